"""Entry point the Pulumi CLI runs for `--policy-pack policy`; the rules live in rules.py."""

from pulumi_policy import PolicyPack
from rules import POLICIES

PolicyPack(name="prefect-stack", policies=POLICIES)
