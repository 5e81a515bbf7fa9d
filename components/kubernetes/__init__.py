"""The Kubernetes backend: `checks` and `manifests` are plain functions; `stack` wires Pulumi."""
