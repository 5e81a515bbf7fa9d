"""A trivial flow the dev stack's worker can run: `prefect deploy` it to the dev-pool."""

from prefect import flow


@flow(log_prints=True)
def hello(name: str = "prefect-stack") -> str:
    message = f"hello, {name}"
    print(message)
    return message
