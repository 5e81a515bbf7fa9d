"""The images a stack runs: pulled by reference, or built from a Dockerfile the stack ships.

Containers take an image ID either way (a tag would replace them on every `up`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.spec import StackPlan


@dataclass(frozen=True)
class BuiltImage:
    """A locally built image: for images that are not pushed, `repo_digest` is the image ID."""

    image: docker.Image

    @property
    def image_id(self) -> pulumi.Output[str]:
        return self.image.repo_digest


def stack_images(plan: StackPlan, resource_name: Callable[[str], str],
                 opts: pulumi.ResourceOptions
                 ) -> Mapping[str, docker.RemoteImage | BuiltImage]:
    """Every image the plan's services name; built ones from their shipped Dockerfile."""
    builds = {b.tag: b for b in plan.builds}
    images: dict[str, docker.RemoteImage | BuiltImage] = {}
    for image in sorted({s.image for s in plan.services}):
        build = builds.get(image)
        if build is None:
            images[image] = docker.RemoteImage(resource_name(image), name=image,
                                               keep_locally=True, opts=opts)
            continue
        images[image] = BuiltImage(docker.Image(
            resource_name(image), image_name=image, skip_push=True,
            build=docker.DockerBuildArgs(context=build.context,
                                         dockerfile=f"{build.context}/Dockerfile",
                                         args=dict(build.args)),
            opts=opts))
    return images
