#!/usr/bin/env python3
"""Offline checks of the k8s/ tree, run by deploy/validate.sh.

  check_k8s.py structure K8S_DIR
      Every kustomization.yaml under K8S_DIR: each referenced resource,
      patch and generator file exists and parses, and each resource file
      holds Kubernetes objects (apiVersion, kind, metadata.name). Works
      without a kustomize binary.

  check_k8s.py policy RENDERED.yaml SECRET_EXAMPLE.yaml [--pinned-images]
      Rules on a rendered overlay that a schema cannot express: hardened
      pods, probes, resources, selectors that select something, references
      to ConfigMaps and Secrets that exist (Secrets: in the example file,
      with the same keys), HPA targets without a fixed replica count.

Exits 1 and prints one line per problem when anything is wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


def load_docs(path: Path) -> list[dict]:
    try:
        with path.open() as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        problem(f"{path}: cannot be read as YAML: {e}")
        return []


# --------------------------------------------------------------------------
# structure


def check_object(path: Path, doc: object) -> None:
    if not isinstance(doc, dict):
        problem(f"{path}: a document is not a mapping")
        return
    for key in ("apiVersion", "kind"):
        if not doc.get(key):
            problem(f"{path}: a document has no {key}")
    if not (doc.get("metadata") or {}).get("name"):
        problem(f"{path}: {doc.get('kind')} without metadata.name")


def check_kustomization(kfile: Path, root: Path, seen: set[Path]) -> None:
    kfile = kfile.resolve()
    if kfile in seen:
        return
    seen.add(kfile)
    kdir = kfile.parent
    docs = load_docs(kfile)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        problem(f"{kfile}: expected one mapping")
        return
    k = docs[0]
    if k.get("kind", "Kustomization") != "Kustomization":
        problem(f"{kfile}: kind is {k.get('kind')}, expected Kustomization")
    for deprecated in ("commonLabels", "patchesStrategicMerge", "patchesJson6902", "bases", "vars"):
        if deprecated in k:
            problem(f"{kfile}: deprecated field {deprecated}")

    for res in k.get("resources", []) or []:
        if "://" in res or res.startswith("github.com/"):
            problem(f"{kfile}: remote resource {res} cannot be checked offline")
            continue
        target = (kdir / res).resolve()
        if target.is_dir():
            sub = target / "kustomization.yaml"
            if not sub.is_file():
                problem(f"{kfile}: resource dir {res} has no kustomization.yaml")
            else:
                check_kustomization(sub, root, seen)
        elif target.is_file():
            docs = load_docs(target)
            if not docs:
                problem(f"{kfile}: resource {res} holds no object")
            for doc in docs:
                check_object(target, doc)
        else:
            problem(f"{kfile}: resource {res} does not exist")

    for patch in k.get("patches", []) or []:
        if not isinstance(patch, dict):
            problem(f"{kfile}: patch entry is not a mapping")
            continue
        if "path" in patch:
            target = kdir / patch["path"]
            if not target.is_file():
                problem(f"{kfile}: patch {patch['path']} does not exist")
            else:
                for doc in load_docs(target):
                    # JSON6902 patches (lists) need a target; SMP patches are objects.
                    if isinstance(doc, list):
                        if "target" not in patch:
                            problem(f"{kfile}: JSON patch {patch['path']} has no target")
                    else:
                        check_object(target, doc)
        elif "patch" in patch:
            try:
                yaml.safe_load(patch["patch"])
            except yaml.YAMLError as e:
                problem(f"{kfile}: inline patch does not parse: {e}")
        else:
            problem(f"{kfile}: patch entry without path or patch")

    for gen_key in ("configMapGenerator", "secretGenerator"):
        for gen in k.get(gen_key, []) or []:
            if not gen.get("name"):
                problem(f"{kfile}: {gen_key} entry without name")
            for env in gen.get("envs", []) or []:
                target = kdir / env
                if not target.is_file():
                    problem(f"{kfile}: {gen_key} {gen.get('name')}: env file {env} does not exist")
                    continue
                for n, line in enumerate(target.read_text().splitlines(), 1):
                    s = line.strip()
                    if s and not s.startswith("#") and "=" not in s:
                        problem(f"{target}:{n}: not KEY=value")
            for f in gen.get("files", []) or []:
                src = f.split("=", 1)[-1]
                if not (kdir / src).is_file():
                    problem(f"{kfile}: {gen_key} {gen.get('name')}: file {src} does not exist")
            for lit in gen.get("literals", []) or []:
                if "=" not in lit:
                    problem(f"{kfile}: {gen_key} {gen.get('name')}: literal {lit!r} is not KEY=value")

    for img in k.get("images", []) or []:
        if not img.get("name"):
            problem(f"{kfile}: images entry without name")
        if str(img.get("newTag", "")) == "latest":
            problem(f"{kfile}: image {img.get('name')} pinned to :latest")


def structure(k8s_dir: Path) -> None:
    kfiles = sorted(k8s_dir.rglob("kustomization.yaml"))
    if not kfiles:
        problem(f"{k8s_dir}: no kustomization.yaml found")
    seen: set[Path] = set()
    for kfile in kfiles:
        check_kustomization(kfile, k8s_dir, seen)


# --------------------------------------------------------------------------
# policy

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def labels_match(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", selector) if selector else {}
    return all(labels.get(k) == v for k, v in match.items())


def check_container(where: str, c: dict, needs_probes: bool, pinned: bool) -> None:
    name = f"{where} container {c.get('name')}"
    image = c.get("image", "")
    last = image.rsplit("/", 1)[-1]
    if pinned and ("@" not in last and ":" not in last):
        problem(f"{name}: image {image} has no tag")
    if last.endswith(":latest"):
        problem(f"{name}: image {image} uses :latest")
    sc = c.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(f"{name}: allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(f"{name}: readOnlyRootFilesystem must be true")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        problem(f"{name}: capabilities must drop ALL")
    if (sc.get("capabilities") or {}).get("add"):
        problem(f"{name}: adds capabilities")
    if sc.get("privileged"):
        problem(f"{name}: privileged")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                problem(f"{name}: no resources.{kind}.{r}")
    if needs_probes:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in c:
                problem(f"{name}: no {probe}")
        ports = {p.get("name") for p in c.get("ports") or []}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            for action in ("httpGet", "tcpSocket"):
                port = ((c.get(probe) or {}).get(action) or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problem(f"{name}: {probe} uses undeclared port name {port}")


def policy(rendered: Path, secret_example: Path, pinned: bool) -> None:
    objs = [o for o in load_docs(rendered) if isinstance(o, dict)]
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o.get("kind", ""), []).append(o)

    namespaces = {o["metadata"]["name"] for o in by_kind.get("Namespace", [])}
    for o in objs:
        ns = (o.get("metadata") or {}).get("namespace")
        if o.get("kind") != "Namespace" and ns not in namespaces:
            problem(f"{o['kind']}/{o['metadata']['name']}: namespace {ns!r} is not created by this overlay")

    configmaps = {o["metadata"]["name"] for o in by_kind.get("ConfigMap", [])}
    example_secrets: dict[str, set[str]] = {}
    for s in load_docs(secret_example):
        if isinstance(s, dict) and s.get("kind") == "Secret":
            keys = set((s.get("stringData") or {}).keys()) | set((s.get("data") or {}).keys())
            example_secrets[s["metadata"]["name"]] = keys
    rendered_secrets = {o["metadata"]["name"] for o in by_kind.get("Secret", [])}

    def secret_ref(where: str, name: str, key: str | None) -> None:
        if name in rendered_secrets:
            return
        if name not in example_secrets:
            problem(f"{where}: Secret {name} is neither rendered nor in {secret_example.name}")
        elif key is not None and key not in example_secrets[name]:
            problem(f"{where}: key {key} of Secret {name} is missing from {secret_example.name}")

    pod_templates: list[tuple[str, dict, dict]] = []  # (where, labels, podspec)
    hpa_targets = {
        (h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"])
        for h in by_kind.get("HorizontalPodAutoscaler", [])
    }
    workloads = {(o["kind"], o["metadata"]["name"]) for o in objs if o.get("kind") in WORKLOADS}

    for kind in WORKLOADS:
        for o in by_kind.get(kind, []):
            where = f"{kind}/{o['metadata']['name']}"
            spec = o.get("spec") or {}
            tmpl = spec.get("template") or {}
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            pod = tmpl.get("spec") or {}
            pod_templates.append((where, labels, pod))
            if kind != "Job":
                sel = spec.get("selector") or {}
                if not labels_match(sel, labels):
                    problem(f"{where}: selector does not match its pod template labels")
            if (kind, o["metadata"]["name"]) in hpa_targets and "replicas" in spec:
                problem(f"{where}: has spec.replicas although an HPA scales it")
            psc = pod.get("securityContext") or {}
            if psc.get("runAsNonRoot") is not True:
                problem(f"{where}: pod securityContext.runAsNonRoot must be true")
            if not isinstance(psc.get("runAsUser"), int) or psc.get("runAsUser") == 0:
                problem(f"{where}: pod securityContext.runAsUser must be a non-zero uid")
            if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problem(f"{where}: pod seccompProfile must be RuntimeDefault")
            if pod.get("automountServiceAccountToken") is not False:
                problem(f"{where}: automountServiceAccountToken should be false")
            if kind == "Deployment" and "terminationGracePeriodSeconds" not in pod:
                problem(f"{where}: no terminationGracePeriodSeconds")
            volumes = {v["name"]: v for v in pod.get("volumes") or []}
            for v in volumes.values():
                if "secret" in v:
                    secret_ref(where, v["secret"]["secretName"], None)
                    for item in v["secret"].get("items") or []:
                        secret_ref(where, v["secret"]["secretName"], item["key"])
                if "configMap" in v and v["configMap"]["name"] not in configmaps:
                    problem(f"{where}: volume uses missing ConfigMap {v['configMap']['name']}")
            for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
                check_container(where, c, kind != "Job" and c in (pod.get("containers") or []), pinned)
                for m in c.get("volumeMounts") or []:
                    if m["name"] not in volumes:
                        problem(f"{where}: mount of undeclared volume {m['name']}")
                for ef in c.get("envFrom") or []:
                    if "configMapRef" in ef and ef["configMapRef"]["name"] not in configmaps:
                        if not ef["configMapRef"].get("optional"):
                            problem(f"{where}: envFrom missing ConfigMap {ef['configMapRef']['name']}")
                    if "secretRef" in ef and not ef["secretRef"].get("optional"):
                        secret_ref(where, ef["secretRef"]["name"], None)
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    if "secretKeyRef" in vf and not vf["secretKeyRef"].get("optional"):
                        secret_ref(where, vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])
                    if "configMapKeyRef" in vf and vf["configMapKeyRef"]["name"] not in configmaps:
                        problem(f"{where}: env uses missing ConfigMap {vf['configMapKeyRef']['name']}")

    def selects_any(selector: dict, skip_jobs: bool = True) -> list[str]:
        return [w for w, labels, _ in pod_templates
                if labels_match(selector, labels) and not (skip_jobs and w.startswith("Job/"))]

    for s in by_kind.get("Service", []):
        where = f"Service/{s['metadata']['name']}"
        sel = (s.get("spec") or {}).get("selector") or {}
        hits = selects_any(sel)
        if not hits:
            problem(f"{where}: selector {sel} matches no pod template")
        for port in (s.get("spec") or {}).get("ports") or []:
            tp = port.get("targetPort")
            if isinstance(tp, str):
                for w, labels, pod in pod_templates:
                    if w in hits and not any(p.get("name") == tp for c in pod.get("containers") or []
                                             for p in c.get("ports") or []):
                        problem(f"{where}: targetPort {tp} is not a named port of {w}")
    for p in by_kind.get("PodDisruptionBudget", []):
        if not selects_any(p["spec"].get("selector") or {}):
            problem(f"PodDisruptionBudget/{p['metadata']['name']}: selects no pod template")
    for n in by_kind.get("NetworkPolicy", []):
        sel = n["spec"].get("podSelector") or {}
        if sel and not selects_any(sel):
            problem(f"NetworkPolicy/{n['metadata']['name']}: podSelector matches no pod template")
        for rule in n["spec"].get("ingress") or []:
            for peer in rule.get("from") or []:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not selects_any(peer["podSelector"]):
                        problem(f"NetworkPolicy/{n['metadata']['name']}: from.podSelector matches no pod")
    for kind, name in hpa_targets:
        if (kind, name) not in workloads:
            problem(f"HorizontalPodAutoscaler: target {kind}/{name} is not rendered")


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "structure":
        structure(Path(argv[1]))
    elif len(argv) >= 3 and argv[0] == "policy":
        policy(Path(argv[1]), Path(argv[2]), "--pinned-images" in argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"  problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
