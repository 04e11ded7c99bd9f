"""A pod's own file system in `trainyard run --local` (workflows/local/podfs.py, volumes.py,
inputs.py, pod.py), each behaviour a small manifest of ours checked against what Argo v4.1.2 and
Kubernetes do with it (file and function cited)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.test_local_argo_semantics import manifest, run
from tests.test_local_constructs import sh, statuses
from workflows.local import LocalRunner


def steps(*groups: list[dict], templates: list[dict], **spec: object) -> dict:
    main = {"name": "main", "steps": [list(group) for group in groups]}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"},
            "spec": {"entrypoint": "main", "templates": [main, *templates], **spec}}


def test_every_container_path_a_step_writes_is_its_pods_own(tmp_path: Path) -> None:
    # Undeclared paths (`/tmp/x`, a top-level `/result.txt`, `/outer/inner`) are the pod's: two
    # parallel children writing the same /tmp file do not meet, and nothing lands on this machine.
    # A path given as a parameter (this machine's, on purpose) and the runs folder stay shared.
    unique = f"trainyard-{uuid.uuid4().hex}"
    write = sh("write", f"echo {{{{inputs.parameters.i}}}} > /tmp/{unique} && mkdir -p /{unique}/inner "
               f"&& cat /tmp/{unique} > /{unique}/inner/got && echo made > /{unique}.txt",
               inputs={"parameters": [{"name": "i"}]},
               outputs={"parameters": [{"name": "got", "valueFrom": {"path": f"/{unique}/inner/got"}},
                                       {"name": "top", "valueFrom": {"path": f"/{unique}.txt"}}]})
    shared = tmp_path / "given"
    share = sh("share", "echo mine > {{workflow.parameters.out}}")
    spec = manifest([{"name": "w", "template": "write", "withItems": ["a", "b"],
                      "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}},
                     {"name": "s", "template": "share"}], [write, share], parameters=[{"name": "out"}])
    result = LocalRunner(spec, tmp_path / "runs" / "r", {"out": str(shared)}, echo=lambda _: None, parallel=2).run()
    assert result.succeeded
    children = result.tasks["w"].children
    assert [c.parameters for c in children] == [{"got": "a", "top": "made"}, {"got": "b", "top": "made"}]
    assert not Path(f"/tmp/{unique}").exists() and not Path(f"/{unique}").exists() and not Path(f"/{unique}.txt").exists()
    assert shared.read_text() == "mine\n"


def test_a_steps_working_directory_and_tmpdir_are_its_pods(tmp_path: Path) -> None:
    # Docker's default WORKDIR is `/`; a relative write lands in the pod's root, where the output
    # path /result.txt finds it (examples/conditional-artifacts.yaml); `workingDir` is made by the
    # container runtime. Python's tempfile (TMPDIR) uses the pod's /tmp.
    relative = {"name": "rel", "script": {"image": "python", "command": ["python"],
                                          "source": "import tempfile\nopen('result.txt', 'w').write('heads')\n"
                                                    "print(tempfile.gettempdir())"},
                "outputs": {"artifacts": [{"name": "r", "path": "/result.txt"}]}}
    work = sh("wd", "pwd > /tmp/pwd", outputs={"parameters": [{"name": "pwd", "valueFrom": {"path": "/tmp/pwd"}}]})
    work["container"]["workingDir"] = "/src/app"
    result = LocalRunner(manifest([{"name": "r", "template": "rel"}, {"name": "w", "template": "wd"}], [relative, work]),
                         tmp_path / "r", {}, echo=lambda _: None, workdir="/").run()
    assert result.succeeded
    assert result.tasks["r"].artifacts["r"].read_text() == "heads"
    assert result.tasks["r"].result == str(tmp_path / "r" / "r" / "fs" / "tmp")
    assert result.tasks["w"].parameters["pwd"] == str(tmp_path / "r" / "w" / "fs" / "src" / "app")


def test_the_pods_kernel_view_and_the_images_own_files_are_refused_by_name(tmp_path: Path) -> None:
    # /proc/mounts is the pod's mount table (test/e2e/functional/volumes-emptydir.yaml greps it);
    # an output artifact at /etc is the image's files (examples/artifact-disable-archive.yaml):
    # neither exists on this machine, so each is refused rather than read from the host.
    proc = manifest([{"name": "a", "template": "p"}], [sh("p", "grep -q /mnt/vol /proc/mounts")])
    result = run(proc, tmp_path / "p")
    assert result.refusals and "/proc/mounts: /proc shows a pod its own kernel view" in result.refusals[0]
    image = manifest([{"name": "a", "template": "e"}],
                     [sh("e", "true", outputs={"artifacts": [{"name": "etc", "path": "/etc"}]})])
    result = run(image, tmp_path / "e")
    assert result.refusals and "path /etc is part of the image's own file system" in result.refusals[0]


def test_volumes_empty_dir_per_pod_claim_templates_per_run_others_refused(tmp_path: Path) -> None:
    # Kubernetes: an emptyDir is made empty for each pod; a volumeClaimTemplates claim is created
    # once for the run (operator.go createPVCs) and shared by its pods; subPath mounts a sub folder.
    # An existing claim or a ConfigMap lives in the cluster: refused by name.
    write = sh("write", "echo one > /data/log && ls /scratch | wc -l > /tmp/n && echo x > /scratch/x",
               outputs={"parameters": [{"name": "n", "valueFrom": {"path": "/tmp/n"}}]})
    write["container"]["volumeMounts"] = [{"name": "shared", "mountPath": "/data", "subPath": "logs"},
                                         {"name": "scratch", "mountPath": "/scratch"}]
    read = sh("read", "cat /mnt/logs/log > /tmp/out && ls /scratch | wc -l >> /tmp/out",
              outputs={"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}}]})
    read["container"]["volumeMounts"] = [{"name": "shared", "mountPath": "/mnt"}, {"name": "scratch", "mountPath": "/scratch"}]
    spec = steps([{"name": "w", "template": "write"}], [{"name": "r", "template": "read"}], templates=[write, read],
                 volumes=[{"name": "scratch", "emptyDir": {}}],
                 volumeClaimTemplates=[{"metadata": {"name": "shared"}, "spec": {"accessModes": ["ReadWriteOnce"]}}])
    result = run(spec, tmp_path)
    assert result.succeeded, result.tasks
    assert result.tasks["w"].parameters["n"].strip() == "0"
    assert result.tasks["r"].parameters["out"].split() == ["one", "0"]
    existing = steps([{"name": "w", "template": "write"}], templates=[write],
                     volumes=[{"name": "scratch", "emptyDir": {}},
                              {"name": "shared", "persistentVolumeClaim": {"claimName": "my-existing-volume"}}])
    result = run(existing, tmp_path / "x")
    assert result.refusals and "volume 'shared' is a persistentVolumeClaim volume, which lives in the cluster" \
        in result.refusals[0]


def test_an_input_is_a_copy_at_its_path_and_sub_path_takes_a_path_inside_it(tmp_path: Path) -> None:
    # Root cause 9. controller/scope.go resolveArtifact: `subPath` on an artifact argument appends
    # to the artifact's key, so the consumer gets that file or folder of it
    # (examples/artifact-passing-subpath.yaml). The init container loads a copy: a consumer writing
    # into its input leaves the producer's artifact as it was; outputs under an input path are the
    # pod's files (test/e2e/functional/artifact-input-output-samedir.yaml). A subPath that does not
    # exist fails the init container (Error); one leading outside the artifact is refused the same way.
    make = sh("make", "mkdir -p /out/sub && echo hi > /out/sub/hello.txt && echo top > /out/top.txt",
              outputs={"artifacts": [{"name": "dir", "path": "/out"}]})
    take = sh("take", "cat /in > /tmp/got; echo changed > /in",
              inputs={"artifacts": [{"name": "f", "path": "/in"}]},
              outputs={"parameters": [{"name": "got", "valueFrom": {"path": "/tmp/got"}}]})
    inner = sh("inner", "echo more > /outer/sub/more.txt", inputs={"artifacts": [{"name": "d", "path": "/outer"}]},
               outputs={"artifacts": [{"name": "sub", "path": "/outer/sub"}]})

    def use(name: str, template: str, sub: str, art: str) -> dict:
        return {"name": name, "template": template, "depends": "make",
                "arguments": {"artifacts": [{"name": art, "from": "{{tasks.make.outputs.artifacts.dir}}", "subPath": sub}]}}

    spec = manifest([{"name": "make", "template": "make"}, use("file", "take", "sub/hello.txt", "f"),
                     use("inner", "inner", "", "d"), use("missing", "take", "nope.txt", "f"),
                     use("escape", "take", "../../../etc/passwd", "f")], [make, take, inner])
    result = run(spec, tmp_path)
    assert statuses(result) == {"make": "Succeeded", "file": "Succeeded", "inner": "Succeeded",
                                "missing": "Error", "escape": "Error"}
    assert result.tasks["file"].parameters["got"] == "hi"
    assert (result.tasks["make"].artifacts["dir"] / "sub" / "hello.txt").read_text() == "hi\n"  # not "changed"
    assert sorted(p.name for p in result.tasks["inner"].artifacts["sub"].iterdir()) == ["hello.txt", "more.txt"]
    assert "nope.txt: no such file or folder" in result.tasks["missing"].message
    assert "leads outside the artifact" in result.tasks["escape"].message
    assert not result.refusals


def test_an_unresolvable_artifact_argument_errors_its_task_unless_optional(tmp_path: Path) -> None:
    # dag.go resolveDependencyReferences: an artifact the producer did not make ("Unable to
    # resolve") errors the consumer, unless the argument is optional, then it is left out.
    maybe = sh("maybe", "true", outputs={"artifacts": [{"name": "a", "path": "/tmp/a", "optional": True}]})
    use = sh("use", "test ! -e /tmp/in", inputs={"artifacts": [{"name": "i", "path": "/tmp/in", "optional": True}]})
    spec = manifest([{"name": "m", "template": "maybe"},
                     {"name": "strict", "template": "use", "depends": "m",
                      "arguments": {"artifacts": [{"name": "i", "from": "{{tasks.m.outputs.artifacts.a}}"}]}},
                     {"name": "lenient", "template": "use", "depends": "m",
                      "arguments": {"artifacts": [{"name": "i", "from": "{{tasks.m.outputs.artifacts.a}}",
                                                   "optional": True}]}}], [maybe, use])
    result = run(spec, tmp_path)
    assert statuses(result) == {"m": "Succeeded", "strict": "Error", "lenient": "Succeeded"}
    assert 'Unable to resolve: "tasks.m.outputs.artifacts.a"' in result.tasks["strict"].message
    assert not result.refusals


def test_a_step_ends_with_its_main_process(tmp_path: Path) -> None:
    # A container ends when its first process does: what it left running in the background is
    # killed with it (test/e2e/testdata/subprocess-workflow.yaml: `sleep 60 &` then exit).
    spec = manifest([{"name": "a", "template": "bg"}], [sh("bg", "sleep 60 & echo started")])
    result = run(spec, tmp_path)
    assert result.succeeded and result.tasks["a"].seconds < 30


def test_a_command_not_found_is_the_emissarys_message(tmp_path: Path) -> None:
    # cmd/argoexec/commands/emissary.go: exec.LookPath fails, the main container exits 64
    # (test/e2e/testdata/cannot-start-workflow.yaml, invalid_command_test.go).
    spec = manifest([{"name": "a", "template": "x"}], [{"name": "x", "container": {"image": "x", "command": ["invalid"]}}])
    result = run(spec, tmp_path)
    assert result.phase == "Failed"
    assert 'exec: "invalid": executable file not found in $PATH' in result.tasks["a"].message


@pytest.mark.parametrize("bad", [{"hostPath": {"path": "/"}}, {"configMap": {"name": "c"}}, {"secret": {"secretName": "s"}}])
def test_volumes_of_the_cluster_are_refused_when_mounted(tmp_path: Path, bad: dict) -> None:
    step = sh("s", "true")
    step["container"]["volumeMounts"] = [{"name": "v", "mountPath": "/v"}]
    spec = manifest([{"name": "a", "template": "s"}], [step])
    spec["spec"]["volumes"] = [{"name": "v", **bad}]
    result = run(spec, tmp_path)
    assert result.refusals and "lives in the cluster" in result.refusals[0]


def test_an_unknown_volume_mount_is_named(tmp_path: Path) -> None:
    step = sh("s", "true")
    step["container"]["volumeMounts"] = [{"name": "nope", "mountPath": "/v"}]
    result = run(manifest([{"name": "a", "template": "s"}], [step]), tmp_path)
    # Kubernetes refuses such a pod (`volumeMounts[0].name: Not found`): the node is Error.
    assert result.tasks["a"].status == "Error" and not result.refusals
    assert "volumeMounts[0].name: no volume 'nope'" in result.tasks["a"].message


def test_an_images_own_files_stand_in_where_given(tmp_path: Path) -> None:
    # An image's program at its path (argoproj/argosay:v2 is /argosay, test/e2e/testdata/progress-workflow.yaml):
    # given a folder standing in for the image, a step runs it there; the pod still writes its own files.
    image = tmp_path / "image"
    (image / "bin").mkdir(parents=True)
    (image / "bin" / "say").write_text("#!/bin/sh\necho \"said $1\" > \"$2\"\n")
    (image / "bin" / "say").chmod(0o755)
    step = sh("s", "/bin/say hi /tmp/out", outputs={"parameters": [{"name": "o", "valueFrom": {"path": "/tmp/out"}}]})
    step["container"]["image"] = "tool:1"
    result = LocalRunner(manifest([{"name": "a", "template": "s"}], [step]), tmp_path / "r", {}, echo=lambda _: None,
                         images={"tool:1": image}).run()
    assert result.tasks["a"].parameters == {"o": "said hi"} and not (image / "tmp").exists()
