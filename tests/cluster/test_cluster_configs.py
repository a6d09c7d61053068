"""Offline checks of the deployment files in ``cluster/`` (no cloud account, no credentials).

Ray cluster-launcher configs (``cluster/*.yaml``) are validated twice: against the JSON schema
shipped in the ray wheel (``ray/autoscaler/ray-schema.json``, with jsonschema), and by Ray's own
preparation and validation — ``prepare_config`` (merges the provider's defaults.yaml) and
``validate_config`` (schema again plus Ray's semantic checks) from
``ray.autoscaler._private.util``; the on-prem config also goes through ``_bootstrap_config``, the
whole ``ray up`` preparation, whose ``local`` provider needs no network. The AWS and GCP
bootstraps (key pairs, IAM roles, subnets, resource auto-fill) call the cloud APIs and are not run.

KubeRay manifests are parsed with yaml and checked field by field (there is no CRD schema offline).
The object-store variants (``gpu-s3.yaml``, ``gpu-gcp-gcs.yaml``, ``kuberay/object-store/``) get the
same checks, except that they mount no shared file system: they write to a bucket, reached through
the nodes' IAM role / service account — no keys anywhere in ``cluster/``.
The README's ``ray submit`` / ``ray job submit`` lines are parsed by Ray's own click commands and
by the sweep scripts' argument parser.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
RAY_CONFIGS = sorted(CLUSTER.glob("*.yaml"))
KUBE_FILES = sorted((CLUSTER / "kuberay").glob("*.yaml"))
KUBE_OBJECT_FILES = sorted((CLUSTER / "kuberay" / "object-store").glob("*.yaml"))
#: the object-store variants of the cluster-launcher configs and the URI scheme of their --storage
OBJECT_STORE = {"gpu-s3.yaml": "s3://", "gpu-gcp-gcs.yaml": "gs://"}
SHARED = "/mnt/shared"  # the shared file system on every node (EFS, Filestore, NFS, a RWX volume)
# Where `ray up` puts the repository on every node. Not ~/rsng: `ray submit` runs `python ~/script.py`,
# which puts ~ first on sys.path, and a ~/rsng folder (the repository root, no __init__.py) then
# shadows the editable install as a namespace package (`from rsng import __version__` fails).
REPO_MOUNT = "~/src/rsng"
MLFLOW_SCRIPT = CLUSTER / "mlflow-server.sh"
# importing Ray's CLI modules (for the README checks) imports ray.serve, which trips pydantic's deprecations
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.serve._private.config")
COMMAND_KEYS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _pins() -> dict[str, str]:
    """The versions pyproject.toml pins for jax and ray (``{"jax": "0.10.2", "ray": "2.60.*"}``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["service"]
    out = {}
    for req in reqs:
        m = re.fullmatch(r"(jax|ray)\[[a-z]+\]==([\w.*]+)", req.strip())
        if m:
            out[m.group(1)] = m.group(2)
    assert set(out) == {"jax", "ray"}, reqs
    return out


def _ids(paths):
    return [str(p.relative_to(CLUSTER)) for p in paths]


def test_every_yaml_in_cluster_is_checked_here():
    every = sorted(CLUSTER.rglob("*.yaml")) + sorted(CLUSTER.rglob("*.yml"))
    assert sorted(every) == sorted(RAY_CONFIGS + KUBE_FILES + KUBE_OBJECT_FILES), (
        "a new file in cluster/ needs its checks here"
    )
    assert {p.name for p in RAY_CONFIGS} >= {"gpu.yaml", "local.yaml", *OBJECT_STORE}
    assert {p.name for p in KUBE_OBJECT_FILES} == {"rayjob.yaml", "mlflow.yaml"}
    assert {p.name for p in KUBE_FILES} >= {"raycluster.yaml", "rayjob.yaml"}


# ---------------------------------------------------------------- Ray cluster-launcher configs


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_ray_config_matches_the_schema_in_the_ray_wheel(path, ray_schema):
    import jsonschema

    cls = jsonschema.validators.validator_for(ray_schema)
    cls.check_schema(ray_schema)
    errors = sorted(cls(ray_schema).iter_errors(_load(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def _prepared(path: Path) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(_load(path)))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_ray_config_passes_rays_own_preparation_and_validation(path):
    prepared = _prepared(path)
    assert prepared["head_node_type"] in prepared["available_node_types"]
    for name, node_type in prepared["available_node_types"].items():
        for key, value in node_type["resources"].items():  # fractional values break the autoscaler
            assert type(value) is int and value >= 0, f"{name}.resources.{key} = {value!r}: must be an integer"
    if prepared["provider"]["type"] == "local":  # the whole `ray up` preparation, offline for this provider
        from ray.autoscaler._private.commands import _bootstrap_config

        boot = _bootstrap_config(copy.deepcopy(_load(path)), no_config_cache=True)
        worker_type = next(iter(boot["available_node_types"].values()))
        assert worker_type["max_workers"] == len(boot["provider"]["worker_ips"]) >= 1


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_every_command_is_valid_bash(path):
    """Catches e.g. a ` #` that YAML took for a comment and cut a quoted string short."""
    cfg = _load(path)
    for key in COMMAND_KEYS:
        for cmd in cfg.get(key) or []:
            r = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
            assert r.returncode == 0, f"{key}: {cmd!r}: {r.stderr}"


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_head_schedules_no_trials_and_gpu_workers_autoscale(path):
    prepared = _prepared(path)
    types = prepared["available_node_types"]
    if prepared["provider"]["type"] == "local":  # one node type; the head's resources come from ray start
        head_start = " ".join(prepared["head_start_ray_commands"])
        assert "--num-cpus=0" in head_start and "--num-gpus=0" in head_start
        return
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("CPU") == 0 and head.get("max_workers", 0) == 0
    gpu_types = [t for n, t in types.items() if n != prepared["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    assert gpu_types, "no GPU worker type"
    for t in gpu_types:
        assert t.get("min_workers", 0) == 0 < t["max_workers"] <= prepared["max_workers"]
        assert t["resources"].get("CPU", 0) >= 1


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_repository_and_token_reach_every_node(path):
    """`ray submit` uploads only the script: the package travels as a file mount (from the repo root,
    where `ray up` runs), without what .gitignore excludes (the local .venv, results, caches)."""
    cfg = _load(path)
    mounts = cfg["file_mounts"]
    assert [remote for remote, local in mounts.items() if (ROOT / local).resolve() == ROOT] == [REPO_MOUNT]
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert ".gitignore" in cfg["rsync_filter"] and ".venv/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_setup_installs_the_package_and_a_cuda_jax_on_the_pinned_versions(path):
    pins = _pins()
    prepared = _prepared(path)
    setup = " ; ".join(prepared["setup_commands"])
    assert re.search(r'pip install [^;]*-e "\$HOME/src/rsng\[service\]"', setup), setup
    assert f'"ray[default]=={pins["ray"]}"' in setup  # the dashboard (ray job submit, ray dashboard)
    workers = " ; ".join(prepared["worker_setup_commands"])
    assert f'"jax[cuda12]=={pins["jax"]}"' in workers
    assert "--python 3.11" in setup  # one Python minor across the cluster and the driver
    if prepared["provider"]["type"] == "aws":
        assert "boto3" in " ".join(prepared["head_setup_commands"])  # the autoscaler on the head


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_token_auth_stays_on_and_the_dashboard_on_localhost(path):
    text = path.read_text()
    assert "RAY_AUTH_MODE=disabled" not in text and "dashboard-host" not in text
    cfg = _load(path)
    starts = [
        c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in cfg[key] if "ray start" in c
    ]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token ray start" in c for c in starts)
    # the shells of `ray submit` / `ray exec` (drivers) see the mode too
    assert any("RAY_AUTH_MODE=token" in c and ".bashrc" in c for c in cfg["setup_commands"])


@pytest.mark.parametrize("path", RAY_CONFIGS, ids=_ids(RAY_CONFIGS))
def test_shared_storage_and_mlflow_server_on_the_head(path):
    cfg = _load(path)
    setup = " ; ".join(cfg["setup_commands"])
    if path.name in OBJECT_STORE:  # no shared file system: results and MLflow artifacts in the bucket
        scheme = OBJECT_STORE[path.name]
        assert SHARED not in path.read_text() and "mount" not in setup
        start = cfg["head_start_ray_commands"][-1]
        assert re.fullmatch(rf"bash {REPO_MOUNT}/cluster/mlflow-server\.sh start ~/rsng-mlflow {scheme}\S+", start)
        node_types = cfg["available_node_types"].values()
        key = "IamInstanceProfile" if scheme == "s3://" else "serviceAccounts"
        assert all(key in t["node_config"] for t in node_types), f"every node type needs its {key}"
        return
    assert f"{SHARED}/rsng" in setup  # mounted (cloud) or checked writable (on-prem) on every node
    head_start = cfg["head_start_ray_commands"]
    assert head_start[-1] == f"bash {REPO_MOUNT}/cluster/mlflow-server.sh start {SHARED}/rsng/mlflow"


def test_mlflow_server_script():
    assert subprocess.run(["bash", "-n", str(MLFLOW_SCRIPT)]).returncode == 0
    text = MLFLOW_SCRIPT.read_text()
    assert "0.0.0.0" not in text and "get_node_ip_address" in text  # the private address Ray uses
    assert "sqlite:///$store/mlflow.db" in text and '--artifacts-destination "$artifacts"' in text
    assert "artifacts=${artifacts:-$store/artifacts}" in text


def test_no_credentials_in_cluster_files():
    """Object-store access comes from IAM roles / service accounts, never from keys in these files."""
    for path in sorted(CLUSTER.rglob("*")):
        if path.is_file() and path.suffix != ".md":  # (the README names the variables, without values)
            text = path.read_text().lower()
            for word in (
                "aws_secret_access_key",
                "aws_access_key_id",
                "aws_session_token",
                '"private_key":',
                "-----begin",
                "google_application_credentials",
            ):  # (local.yaml's ssh key path is fine)
                assert word not in text, f"{path.relative_to(CLUSTER)} mentions {word}"


# ---------------------------------------------------------------- README commands


def _readme_commands(prefix: str) -> list[str]:
    """Shell commands in cluster/README.md's code blocks that start with ``prefix``
    (continuation lines joined; a leading ``VAR=value`` environment is dropped)."""
    text = (CLUSTER / "README.md").read_text()
    out = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line)
            if line.startswith(prefix):
                out.append(line)
    return out


def _parse_sweep_args(script: str, args: list[str]):
    from rsng.service.cli import common_parser

    name = Path(script).stem
    assert (ROOT / "sweeps" / f"{name}.py").is_file(), script
    return common_parser(name, "").parse_args(args)


def test_readme_ray_submit_lines_parse():
    from ray.scripts.scripts import submit

    lines = _readme_commands("ray submit ")
    assert lines, "cluster/README.md shows no `ray submit` command"
    for line in lines:
        params = submit.make_context("submit", shlex.split(line)[2:]).params
        assert (ROOT / params["cluster_config_file"]).is_file(), line
        assert params["script"].startswith("sweeps/"), line
        args = _parse_sweep_args(params["script"], list(params["script_args"]))
        config = Path(params["cluster_config_file"]).name
        # every node writes there: the shared file system, or the bucket of an object-store variant
        assert args.storage.startswith(OBJECT_STORE.get(config, f"{SHARED}/rsng/")), line


def test_readme_ray_job_submit_lines_parse():
    from ray.dashboard.modules.job.cli import submit

    lines = _readme_commands("ray job submit ")
    assert lines, "cluster/README.md shows no `ray job submit` command"
    for line in lines:
        params = submit.make_context("submit", shlex.split(line)[3:]).params
        entry = list(params["entrypoint"])
        assert entry[0] == "python" and entry[1].startswith("sweeps/"), line
        assert params["working_dir"] == ".", line
        args = _parse_sweep_args(entry[1], entry[2:])
        assert args.storage.startswith(f"{SHARED}/rsng/"), line


# ---------------------------------------------------------------- KubeRay manifests


def _kube_docs() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in KUBE_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), path
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def _one(kind: str) -> dict:
    found = [d for (k, _), d in _kube_docs().items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _image_dir() -> tuple[str, str]:
    """(base image, folder the repository is copied to) from cluster/kuberay/Dockerfile."""
    text = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, flags=re.M).group(1)
    dest = re.search(r"^COPY (?:--\S+ )*\. (\S+)", text, flags=re.M).group(1)
    return base, dest


def test_dockerfile_pins_match_the_project():
    import ray

    pins = _pins()
    base, dest = _image_dir()
    assert base == f"rayproject/ray:{ray.__version__}-py311"
    text = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    assert f'-e "{dest}[service]"' in text and f'"jax[cuda12]=={pins["jax"]}"' in text


def _check_cluster_spec(spec: dict) -> None:
    import ray

    pvc = _one("PersistentVolumeClaim")
    assert spec["rayVersion"] == ray.__version__
    assert spec.get("authOptions", {}).get("mode") == "token"
    assert spec.get("enableInTreeAutoscaling") is True
    head = spec["headGroupSpec"]
    assert str(head["rayStartParams"].get("num-cpus")) == "0"  # the head schedules no trials
    pods = [head["template"]["spec"]]
    gpu_groups = []
    for group in spec["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] and group["maxReplicas"] >= 1
        pod = group["template"]["spec"]
        pods.append(pod)
        limits = [c["resources"]["limits"] for c in pod["containers"]]
        requests = [c["resources"].get("requests", {}) for c in pod["containers"]]
        gpus = [lim.get("nvidia.com/gpu") for lim in limits]
        if any(gpus):
            assert all(type(g) is int and g >= 1 for g in gpus), gpus  # whole GPUs; trials share them inside Ray
            assert [r.get("nvidia.com/gpu") for r in requests] == gpus  # Kubernetes wants requests == limits
            gpu_groups.append(group["groupName"])
    assert gpu_groups, "no worker group with nvidia.com/gpu limits"
    images = {c["image"] for pod in pods for c in pod["containers"]}
    assert len(images) == 1, images
    for pod in pods:  # every node mounts the shared volume where the sweep writes
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
        }
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        assert claims.get(mounts.get(SHARED)) == pvc["metadata"]["name"], pod


def test_kuberay_raycluster():
    rc = _one("RayCluster")
    assert rc["apiVersion"] == "ray.io/v1"
    _check_cluster_spec(rc["spec"])


def test_kuberay_rayjob_runs_a_sweep_script_from_the_image():
    job = _one("RayJob")
    assert job["apiVersion"] == "ray.io/v1"
    _check_cluster_spec(job["spec"]["rayClusterSpec"])
    assert job["spec"].get("shutdownAfterJobFinishes") is True
    argv = shlex.split(job["spec"]["entrypoint"])
    _, dest = _image_dir()
    assert argv[0] == "python" and argv[1].startswith(f"{dest}/sweeps/"), argv
    args = _parse_sweep_args(argv[1], argv[2:])
    assert args.storage.startswith(f"{SHARED}/rsng/")
    assert args.gpus_per_trial > 0
    service = _one("Service")
    assert args.mlflow_uri == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_kuberay_object_store_variant():
    """The RayJob writes to s3:// with no volume; every pod (Ray head, GPU workers, MLflow) runs as the
    service account that carries the IAM role (IRSA) / workload identity; MLflow's artifacts go to the bucket."""
    import ray

    docs = {}
    for path in KUBE_OBJECT_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            docs.setdefault(doc["kind"], []).append(doc)
    assert sorted(docs) == [
        "Deployment",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "RayJob",
        "Service",
        "ServiceAccount",
    ]
    (policy,) = docs["NetworkPolicy"]  # only the Ray pods may reach MLflow
    client = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    (sa,), (job,), (deploy,), (service,) = docs["ServiceAccount"], docs["RayJob"], docs["Deployment"], docs["Service"]
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]
    spec = job["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__ and spec.get("authOptions", {}).get("mode") == "token"
    assert str(spec["headGroupSpec"]["rayStartParams"].get("num-cpus")) == "0"
    pods = [spec["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in spec["workerGroupSpecs"]]
    assert any(
        c["resources"]["limits"].get("nvidia.com/gpu")
        for g in spec["workerGroupSpecs"]
        for c in g["template"]["spec"]["containers"]
    )
    for pod in [*pods, deploy["spec"]["template"]["spec"]]:
        assert pod.get("serviceAccountName") == sa["metadata"]["name"], pod
    for pod in pods:
        assert not pod.get("volumes") and not any(c.get("volumeMounts") for c in pod["containers"])
    templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    assert all(client.items() <= t.get("metadata", {}).get("labels", {}).items() for t in templates)
    argv = shlex.split(job["spec"]["entrypoint"])
    _, dest = _image_dir()
    assert argv[0] == "python" and argv[1].startswith(f"{dest}/sweeps/"), argv
    args = _parse_sweep_args(argv[1], argv[2:])
    assert args.storage.startswith("s3://") and args.gpus_per_trial > 0
    assert args.mlflow_uri == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    cmd = " ".join(container["command"] + container["args"])
    assert "--artifacts-destination s3://" in cmd and "sqlite:////mnt/mlflow/mlflow.db" in cmd
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert "boto3" in (CLUSTER / "kuberay" / "Dockerfile").read_text()  # MLflow's S3 artifact client


def test_kuberay_mlflow_is_internal_and_on_the_shared_volume():
    pvc, service, deploy = _one("PersistentVolumeClaim"), _one("Service"), _one("Deployment")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"  # no LoadBalancer: in-cluster only
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    # the server has no authentication: only the Ray pods (labelled in both configs) may reach it
    policy = _one("NetworkPolicy")
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"] and len(policy["spec"]["ingress"]) == 1
    rule = policy["spec"]["ingress"][0]
    assert rule["ports"] == [{"port": 5000, "protocol": "TCP"}] and len(rule["from"]) == 1
    allowed = rule["from"][0]["podSelector"]["matchLabels"]
    assert allowed and set(rule["from"][0]) == {"podSelector"}  # same namespace, labelled pods only
    ray = _one("RayCluster")["spec"]
    job = _one("RayJob")["spec"]["rayClusterSpec"]
    for spec in (ray, job):
        templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
        assert all(allowed.items() <= t["metadata"]["labels"].items() for t in templates)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    cmd = " ".join(container["command"] + container["args"])
    assert (
        f"sqlite:///{SHARED}/rsng/mlflow/mlflow.db" in cmd and f"--artifacts-destination {SHARED}/rsng/mlflow/" in cmd
    )
    assert (
        container["image"] == _one("RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    )
