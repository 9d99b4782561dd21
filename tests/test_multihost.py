"""Two local processes, 4 emulated CPU devices each, one 8-device mesh across them (Gloo over TCP):
ring all-reduce (and the other paradigms) equal pmean and the float64 mean across the processes."""

TIMEOUT_S = 60


def test_two_processes_agree_with_pmean_across_hosts(run_local_processes):
  def command(coordinator, i):
    return [
      "-m",
      "jaxopt_hw.distributed.multihost",
      "--coordinator",
      coordinator,
      "--num-processes",
      "2",
      "--local-devices",
      "4",
      "--p",
      "1001",
      "--timeout",
      str(TIMEOUT_S - 10),
      "--process-id",
      str(i),
    ]

  reports = run_local_processes(command, 2, TIMEOUT_S)
  assert sorted(r["process_id"] for r in reports) == [0, 1]
  seen = {}
  for r in reports:
    assert (r["process_count"], r["devices"], r["local_devices"]) == (2, 8, 4)
    for name, result in r["paradigms"].items():
      assert result["max_diff_vs_pmean"] < 1e-5 and result["max_diff_vs_mean64"] < 1e-5, (
        name,
        result,
      )
      seen.setdefault(name, set()).update(result["local_workers"])
  # Each process computed its own workers' rows; together they cover every worker of the ring.
  assert seen["ring_allreduce"] == set(range(8))
  assert seen["parameter_server"] == set(range(7))  # 7 workers + the server on device 8
  assert all(r["ok"] for r in reports)
