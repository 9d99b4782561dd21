"""The experiment configs (TOML), shipped inside the package as jaxopt_hw.configs."""
