"""Support code shared by the tests and the benchmarks: real stacks driven through the CLI,
the SDK probe, host watchers and a Docker socket proxy. Nothing here is a test."""
