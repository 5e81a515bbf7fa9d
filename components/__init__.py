"""prefect-stack: a typed Prefect 3 platform on Docker, as a Pulumi program.

Layers, from Pulumi-free to thin Pulumi wiring:
- `config`: the typed stack config (pydantic), read by `loader` from Pulumi config.
- `plan`: Prefect knowledge; turns the config into a `spec.StackPlan` of plain data.
- `caddy` / `traefik`: render proxy configuration from `routes`.
- `docker`: ComponentResources that deploy a plan with pulumi-docker.
"""
