"""Shared test set-up: float64 on and 16 emulated CPU devices, before JAX creates any device."""

from jaxopt_hw.platform import configure

configure()
