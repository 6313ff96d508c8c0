"""A small kustomize renderer for the subset deploy/k8s uses, so the manifests can be checked offline.

Supported: `resources` (files and directories with their own kustomization.yaml), `namespace`, `images`
(newName/newTag) and `patches` given by `path` holding strategic-merge patches (one or more documents) of
objects identified by kind and name. Anything else in a kustomization is refused, so that the manifests cannot
silently grow a feature this renderer would ignore.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
# Lists merged element by element on this key in a strategic-merge patch (containers, env, volumes...);
# every other list is replaced whole, as kustomize does for lists without a merge key.
MERGE_KEY = "name"


class UnsupportedKustomization(Exception):
    pass


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[Resource]:
    """The resources a `kustomize build <directory>` would print (in file order, not kustomize's sort)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(render(target))
        else:
            resources.extend(load_documents(target))
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise UnsupportedKustomization(f"{directory}: only `patches: - path: ...` is supported")
        for patch in load_documents(directory / patch_entry["path"]):
            apply_patch(resources, patch)
    for image in kustomization.get("images", []):
        set_image(resources, image)
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace
    return resources


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(matches) != 1:
        raise KeyError(f"{kind}/{name}: {len(matches)} matches")
    return matches[0]


def apply_patch(resources: list[Resource], patch: Resource) -> None:
    target = find(resources, patch["kind"], patch["metadata"]["name"])
    merged = strategic_merge(target, patch)
    target.clear()
    target.update(merged)


def strategic_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and MERGE_KEY in x for x in base + patch)
    ):
        out_list = copy.deepcopy(base)
        index = {item[MERGE_KEY]: i for i, item in enumerate(out_list)}
        for item in patch:
            if item[MERGE_KEY] in index:
                i = index[item[MERGE_KEY]]
                out_list[i] = strategic_merge(out_list[i], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    if resource["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        spec: dict[str, Any] = resource["spec"]["template"]["spec"]
        return spec
    return None


def containers(resource: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(resource)
    if spec is None:
        return []
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def image_name(image: str) -> str:
    """`repo/name:tag` or `repo/name@sha256:...` -> `repo/name` (a registry port's colon is kept)."""
    without_digest = image.split("@", 1)[0]
    last = without_digest.rsplit("/", 1)[-1]
    if ":" in last:
        return without_digest[: len(without_digest) - len(last)] + last.split(":", 1)[0]
    return without_digest


def set_image(resources: list[Resource], rule: dict[str, str]) -> None:
    for resource in resources:
        for container in containers(resource):
            if image_name(container["image"]) != rule["name"]:
                continue
            name = rule.get("newName", rule["name"])
            if "digest" in rule:
                container["image"] = f"{name}@{rule['digest']}"
            elif "newTag" in rule:
                container["image"] = f"{name}:{rule['newTag']}"
            else:
                container["image"] = name
