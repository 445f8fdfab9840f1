"""Real-component test fixtures: Litestream binaries, a SeaweedFS S3 server,
a deterministic workload and the replicas Litestream writes from it."""
