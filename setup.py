"""Packaging glue: the shipped environments in `envs/` install as the `haystack_rl_envs` package."""

from setuptools import find_packages, setup

packages = find_packages(include=["haystack_rl", "haystack_rl.*"])
packages += ["haystack_rl_envs"] + [f"haystack_rl_envs.{name}" for name in find_packages("envs")]
setup(packages=packages, package_dir={"haystack_rl_envs": "envs"})
