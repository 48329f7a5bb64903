"""Shared servers: envs and checkouts never silently change each other's deployments, and code
reaches the worker from this checkout, a directory, or a git clone. All on real servers."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_prefect_hooks.cli import commands
from kedro_prefect_hooks.config import ConfigError
from kedro_prefect_hooks.registration.plan import OWNER_LABEL

from conftest import invoke, open_session, project_deployments, start_process_worker, stop_process
from kedro_projects import add_flow_pipelines
from prefect_runs import call_api, timestamp, trigger, wait_for_run


def state(api_url: str, project: Path) -> list[tuple]:
    """What a user would compare after each session: name, env parameter, paused, where runs start, last update."""
    return [
        (
            d["name"],
            d["parameters"].get("env"),
            d["paused"],
            json.dumps(d["pull_steps"]),
            d["updated"],
            d["labels"].get(OWNER_LABEL),
        )
        for d in project_deployments(api_url, project)
    ]


def show(title: str, rows: list[tuple]) -> None:
    """Printed with -s: the server's deployments after each session, for the record."""
    print(f"\n{title}")
    for name, env, paused, steps, updated, owner in rows:
        print(f"  {name}: env={env} paused={paused} updated={updated} owner=({owner}) pull_steps={steps}")


def package_name(project: Path) -> str:
    return next(p.name for p in (project / "src").iterdir() if p.name.startswith("proj_"))


def register(project: Path, *args: str):
    from kedro.framework.startup import bootstrap_project

    metadata = bootstrap_project(project)
    return CliRunner().invoke(commands, ["prefect", "register", *args], obj=metadata, catch_exceptions=False)


def test_envs_do_not_fight_over_deployments(shared_api_url, make_project, hook_log):
    """Seen: `kedro run -e staging` rewrote (and paused) what `kedro run` registered, and back."""
    project = make_project("pipelines: [data_processing, data_science]\n", name="Bar Proj")
    (project / "conf" / "staging").mkdir()
    (project / "conf" / "staging" / "prefect.yml").write_text("defaults: {paused: true}\n")

    open_session(project)
    first = state(shared_api_url, project)
    show("after `kedro run`", first)
    assert [(name, env, paused) for name, env, paused, *_ in first] == [
        ("data_processing", None, False),
        ("data_science", None, False),
    ]

    open_session(project, env="staging")
    show("after `kedro run -e staging`", state(shared_api_url, project))
    assert state(shared_api_url, project) == first  # nothing written
    clashes = [m for m in hook_log.messages() if "belongs to project" in m]
    assert len(clashes) == 2 and "env local" in clashes[0] and "--take-over" in clashes[0]

    open_session(project)
    assert state(shared_api_url, project) == first  # and nothing flips back

    taken = register(project, "--env", "staging", "--take-over")
    assert taken.exit_code == 0, taken.output
    after = state(shared_api_url, project)
    show("after `kedro prefect register -e staging --take-over`", after)
    assert [(name, env, paused) for name, env, paused, *_ in after] == [
        ("data_processing", "staging", True),
        ("data_science", "staging", True),
    ]
    hook_log.records.clear()
    open_session(project)  # the default env now sees staging's deployments: it leaves them alone
    assert state(shared_api_url, project) == after
    assert len([m for m in hook_log.messages() if "env staging" in m]) == 2


def test_a_second_checkout_does_not_take_over(shared_api_url, make_project, hook_log, tmp_path):
    """Seen: a colleague's or CI's checkout at another path repointed every deployment at itself."""
    first = make_project("pipelines: [data_science]\n")
    second = Path(shutil.copytree(first, tmp_path / "elsewhere" / first.name))
    open_session(first)
    before = state(shared_api_url, first)
    open_session(second)
    show("after a session of a second checkout", state(shared_api_url, first))
    assert state(shared_api_url, first) == before
    [clash] = [m for m in hook_log.messages() if "belongs to" in m]
    assert f":{first.resolve()}" in clash
    open_session(first)
    assert state(shared_api_url, first) == before


def test_with_a_directory_source_every_checkout_writes_the_same_and_only_the_first_writes(
    shared_api_url, make_project, hook_log, tmp_path
):
    first = make_project("pipelines: [data_science]\nsource: {directory: /opt/project}\n")
    second = Path(shutil.copytree(first, tmp_path / "ci-checkout" / first.name))
    open_session(first)
    before = state(shared_api_url, first)
    assert json.loads(before[0][3]) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/project"}}
    ]
    open_session(second)
    assert state(shared_api_url, first) == before and not hook_log.messages()


def test_a_git_source_is_cloned_by_a_worker_started_anywhere(api_url, make_project, tmp_path):
    project = add_flow_pipelines(make_project("pipelines: all\n"))
    repository = tmp_path / "project.git"
    subprocess.run(
        ["git", "init", "--bare", "--initial-branch", "main", str(repository)],
        check=True,
        capture_output=True,
    )
    runs = tmp_path / "runs"
    runs.mkdir()
    pool = f"git-{uuid.uuid4().hex[:6]}"
    (project / "conf" / "base" / "prefect.yml").write_text(
        f"pipelines: [__default__]\nsource: {{git: {{url: 'file://{repository}', branch: main}}}}\n"
        f"work_pool: {{name: {pool}, job_variables: {{working_dir: '{runs}'}}}}\n"
    )
    (project / "data" / ".gitkeep").write_text("")  # as Kedro's template keeps data/ in git
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    for command in (["init", "--initial-branch", "main"], ["add", "-A"], ["commit", "-m", "project"]):
        subprocess.run([*git, *command], cwd=project, check=True, capture_output=True)
    subprocess.run([*git, "push", str(repository), "main"], cwd=project, check=True, capture_output=True)

    open_session(project)
    [deployment] = project_deployments(api_url, project)
    clone = deployment["pull_steps"][0]["prefect.deployments.steps.git_clone"]
    assert clone["repository"] == f"file://{repository}" and clone["branch"] == "main"

    run = run_on_a_worker_elsewhere(api_url, pool, deployment, tmp_path)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    clone = runs / "project-main"  # git_clone names it <repository>-<branch>
    assert json.loads((clone / "data" / "08_reporting" / "result.json").read_text()) == 7
    assert not (project / "data" / "08_reporting" / "result.json").exists()  # not in the checkout


def test_a_directory_source_runs_the_copy_there(api_url, make_project, tmp_path):
    project = add_flow_pipelines(make_project("pipelines: all\n"))
    deployed = Path(shutil.copytree(project, tmp_path / "opt" / "project"))
    pool = f"dir-{uuid.uuid4().hex[:6]}"
    (project / "conf" / "base" / "prefect.yml").write_text(
        f"pipelines: [__default__]\nsource: {{directory: '{deployed}'}}\nwork_pool: {{name: {pool}}}\n"
    )
    open_session(project)
    [deployment] = project_deployments(api_url, project)
    run = run_on_a_worker_elsewhere(api_url, pool, deployment, tmp_path)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert json.loads((deployed / "data" / "08_reporting" / "result.json").read_text()) == 7
    assert not (project / "data" / "08_reporting" / "result.json").exists()


@pytest.mark.parametrize(
    ("kind", "worker_class"),
    [
        ("docker", "prefect_docker.worker.DockerWorker"),
        ("kubernetes", "prefect_kubernetes.worker.KubernetesWorker"),
    ],
)
def test_job_variables_are_checked_against_a_typed_pools_template(api_url, make_project, kind, worker_class):
    module, _, name = worker_class.rpartition(".")
    template = getattr(__import__(module, fromlist=[name]), name).get_default_base_job_template()
    pool = f"{kind}-{uuid.uuid4().hex[:6]}"
    created = call_api(
        "POST",
        f"{api_url}/work_pools/",
        json={"name": pool, "type": kind, "base_job_template": template},
        check=False,
    )
    assert created.status_code == 201, created.text

    project = make_project(
        f"pipelines: [data_science, data_processing]\nwork_pool: {{name: {pool}, job_variables: {{image: 'acme/sf:1.4'}}}}\n"
        f"deployments:\n  data_science:\n    work_pool: {{job_variables: {{image: 'acme/sf-gpu:1.4', env: {{CUDA: '1'}}}}}}\n"
    )
    open_session(project)
    by_name = {d["name"]: d for d in project_deployments(api_url, project)}
    assert by_name["data_processing"]["job_variables"] == {"image": "acme/sf:1.4"}
    assert by_name["data_science"]["job_variables"] == {"image": "acme/sf-gpu:1.4", "env": {"CUDA": "1"}}
    assert {d["work_pool_name"] for d in by_name.values()} == {pool}

    (project / "conf" / "base" / "prefect.yml").write_text(
        f"pipelines: [data_science]\nwork_pool: {{name: {pool}, job_variables: {{imagee: 'acme/sf:1.5'}}}}\n"
    )
    with pytest.raises(ConfigError) as error:
        open_session(project)
    assert "unknown job variable(s) ['imagee']" in str(error.value) and "'image'" in str(error.value)
    unchanged = {d["name"]: d["job_variables"] for d in project_deployments(api_url, project)}
    assert unchanged["data_science"] == {"image": "acme/sf-gpu:1.4", "env": {"CUDA": "1"}}  # nothing written


def run_on_a_worker_elsewhere(api_url: str, pool: str, deployment: dict, tmp_path: Path) -> dict:
    """Trigger the deployment and let a plain `prefect worker start`, started in an empty
    directory that has nothing to do with the project, run it; the finished run."""
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    worker = start_process_worker(api_url, pool, tmp_path / "worker.log", cwd=elsewhere)
    try:
        return wait_for_run(api_url, trigger(api_url, deployment["id"]), timeout=180)
    finally:
        stop_process(worker)


def clone_step(deployment: dict) -> dict:
    return deployment["pull_steps"][0]["prefect.deployments.steps.git_clone"]


GIT_URL = "https://git.example.com/acme/proj.git"


@pytest.mark.parametrize(
    ("before", "after", "check"),
    [
        (
            {"git": {"url": GIT_URL, "commit": "1" * 40}},
            {"git": {"url": GIT_URL, "commit": "2" * 40}},
            lambda d: clone_step(d)["commit_sha"] == "2" * 40,
        ),
        (
            {"git": {"url": GIT_URL, "branch": "release-1.4"}},
            {"git": {"url": GIT_URL, "branch": "release-1.5"}},
            lambda d: clone_step(d)["branch"] == "release-1.5",
        ),
        (
            {"directory": "/opt/proj-1.4"},
            {"directory": "/opt/proj-1.5"},
            lambda d: (
                d["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
                == "/opt/proj-1.5"
            ),
        ),
        (
            "local",
            {"git": {"url": GIT_URL, "branch": "main"}},
            lambda d: clone_step(d)["branch"] == "main",
        ),
        (
            {"git": {"url": GIT_URL, "branch": "main"}},
            "local",
            lambda d: (
                "set_working_directory" in json.dumps(d["pull_steps"]) and "git_clone" not in json.dumps(d)
            ),
        ),
    ],
    ids=["new-commit", "new-branch", "new-image-directory", "local-to-git", "git-to-local"],
)
def test_a_release_updates_its_own_deployments_without_a_flag(
    shared_api_url, make_project, hook_log, before, after, check
):
    """Seen: `commit: 111 -> 222` printed `clash ... belongs to ... @111: not written`, rc 0, commit_sha stayed 111."""
    project = make_project(f"pipelines: [data_science]\nsource: {json.dumps(before)}\n")
    open_session(project)
    (project / "conf" / "base" / "prefect.yml").write_text(
        f"pipelines: [data_science]\nsource: {json.dumps(after)}\n"
    )
    # `list` judges as registering does (seen: it said "registered by" this very checkout)
    before_release = invoke(project, "list")
    assert ": outdated," in before_release.output, before_release.output
    open_session(project)
    assert not [m for m in hook_log.messages() if "belongs to" in m], hook_log.messages()
    [deployment] = project_deployments(shared_api_url, project)
    assert check(deployment), deployment["pull_steps"]
    listed = invoke(project, "list")
    assert ": current," in listed.output, listed.output


def test_another_repository_or_checkout_is_still_a_take_over(
    shared_api_url, make_project, hook_log, tmp_path
):
    """A release keeps the owner; another repository, or a second checkout, needs --take-over."""
    project = make_project(f"pipelines: [data_science]\nsource: {{git: {{url: '{GIT_URL}'}}}}\n")
    open_session(project)
    other = "https://git.example.com/someone-else/proj.git"
    (project / "conf" / "base" / "prefect.yml").write_text(
        f"pipelines: [data_science]\nsource: {{git: {{url: '{other}'}}}}\n"
    )
    elsewhere = Path(shutil.copytree(project, tmp_path / "elsewhere" / project.name))
    open_session(elsewhere)  # another checkout, another repository: not ours
    [clash] = [m for m in hook_log.messages() if "belongs to" in m]
    assert GIT_URL.removesuffix(".git") in clash and "--take-over" in clash
    assert clone_step(project_deployments(shared_api_url, project)[0])["repository"] == GIT_URL
    taken = register(elsewhere, "--take-over")
    assert taken.exit_code == 0, taken.output
    assert clone_step(project_deployments(shared_api_url, project)[0])["repository"] == other


def test_deployments_registered_by_0_2_0_stay_their_owners_after_an_upgrade(
    shared_api_url, make_project, hook_log
):
    """0.2.0 wrote the ref and the directory into the owner label: a release after upgrading is no clash."""
    project = make_project(
        "pipelines: [data_processing, data_science]\n"
        f"source: {{git: {{url: '{GIT_URL}', commit: '{'2' * 40}'}}}}\n",
        name="Upgraded Proj",
    )
    package = package_name(project)
    flow = call_api("POST", f"{shared_api_url}/flows/", json={"name": "Upgraded Proj"}).json()
    for pipeline in ("data_processing", "data_science"):  # as 0.2.0 registered them, at commit 111...
        clone = {"id": "clone-project", "repository": GIT_URL, "commit_sha": "1" * 40}
        call_api(
            "POST",
            f"{shared_api_url}/deployments/",
            json={
                "name": pipeline,
                "flow_id": flow["id"],
                "entrypoint": "kedro_prefect_hooks.flow.kedro_pipeline",
                "tags": ["kedro-prefect-hooks", f"kedro-project:{package}", "kedro-env:local"],
                "labels": {
                    OWNER_LABEL: f"project {package}, env local, git {GIT_URL}@{'1' * 40}",
                    "kedro-prefect-hooks.fingerprint": "from-0.2.0",
                },
                "pull_steps": [{"prefect.deployments.steps.git_clone": clone}],
                "parameters": {"pipeline": pipeline, "env": None},
            },
        )
    open_session(project)  # the release of commit 222..., with this version
    assert not [m for m in hook_log.messages() if "belongs to" in m], hook_log.messages()
    assert [clone_step(d)["commit_sha"] for d in project_deployments(shared_api_url, project)] == [
        "2" * 40
    ] * 2


def test_runs_of_one_deployment_run_one_at_a_time_on_a_shared_server(
    shared_api_url, make_project, shared_worker
):
    """Two runs of one deployment at once: the second waits for the first (concurrency_limit: 1)."""
    project = add_flow_pipelines(make_project("pipelines: [sleepy]\n"))
    open_session(project)
    [deployment] = project_deployments(shared_api_url, project)
    first, second = (trigger(shared_api_url, deployment["id"], {"params": {"nap": 2}}) for _ in range(2))
    runs = sorted(
        (wait_for_run(shared_api_url, run) for run in (first, second)), key=lambda r: r["start_time"]
    )
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"]
    assert timestamp(runs[1]["start_time"]) >= timestamp(runs[0]["end_time"])
