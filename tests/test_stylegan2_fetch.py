"""fetch_stylegan2's clone: the pinned commit, or an error naming the commit and the repository."""
import subprocess

import pytest
import yaml

from lsmia.jobs.stylegan2 import clone_at_commit

NVLABS_MAIN = "d72cc7d041b42ec8e806021a205ed9349f87c6a4"


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                               "PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.fixture
def upstream(tmp_path):
    """A repository with two commits on main; returns (path, first commit, second commit)."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git("init", "--quiet", "-b", "main", cwd=repo)
    commits = []
    for content in ("first", "second"):
        (repo / "legacy.py").write_text(f"# {content}\n")
        git("add", "legacy.py", cwd=repo)
        git("commit", "--quiet", "-m", content, cwd=repo)
        commits.append(git("rev-parse", "HEAD", cwd=repo))
    return repo, *commits


def test_clone_checks_out_the_pinned_commit(tmp_path, upstream):
    repo, first, _ = upstream
    checkout = tmp_path / "resources" / "stylegan2-ada-pytorch"
    clone_at_commit(str(repo), first, checkout)
    assert git("rev-parse", "HEAD", cwd=checkout) == first
    assert (checkout / "legacy.py").read_text() == "# first\n"
    assert not checkout.with_name(checkout.name + ".part").exists()


def test_unknown_commit_names_it_and_where_it_looked(tmp_path, upstream):
    repo, _, _ = upstream
    missing = "b6f5dc428456c356be43d430fae37406d74881a3"
    checkout = tmp_path / "checkout"
    with pytest.raises(RuntimeError) as error:
        clone_at_commit(str(repo), missing, checkout)
    message = str(error.value)
    assert missing in message and str(repo) in message
    assert "every branch and tag" in message and f"git fetch origin {missing}" in message
    assert not checkout.exists() and not (tmp_path / "checkout.part").exists()


def test_paper_config_pins_the_head_of_nvlabs_main(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    assert config["stylegan2"]["commit"] == NVLABS_MAIN
    nvlabs = "https://github.com/NVlabs/stylegan2-ada-pytorch.git"
    assert config["stylegan2"]["repository"] == nvlabs
    vendored = repo.parent / "shared" / "vendor" / "stylegan2-ada-pytorch" / "VENDORED.md"
    if vendored.is_file():  # the code the tests run is the code the config pins
        assert NVLABS_MAIN in vendored.read_text()


def test_downloads_already_in_place_are_never_fetched_again(tmp_path):
    """A checkout, pickle and weights file older than the workflow's code (a user's own NVlabs
    checkout, files placed by hand, any `git pull`) are up to date: a fetch job would delete them
    before downloading again."""
    import os

    from workflow_helpers import mini_demo_config, snakemake, write_config

    checkout, pickle = tmp_path / "checkout", tmp_path / "ffhq.pkl"
    weights = tmp_path / "resources/weights/tv_resnet50.pth"
    for folder in (checkout, weights.parent):
        folder.mkdir(parents=True)
    (checkout / "legacy.py").write_text("# the user's checkout\n")
    for path in (pickle, weights):
        path.write_bytes(b"placed by hand")
    for path in (checkout, checkout / "legacy.py", pickle, weights):
        os.utime(path, (946684800, 946684800))  # 2000-01-01: older than any rule's code
    config = mini_demo_config()
    config["attack"]["generator"] = {"kind": "stylegan2", "checkout": str(checkout),
                                     "pickle": str(pickle)}
    config["weights"] = {"tv:resnet50": {"url": "https://example.invalid/resnet50.pth",
                                         "sha256": None}}
    configfile = write_config(config, tmp_path / "config.yaml")
    run = snakemake(tmp_path, configfile, "-n", "fetch_stylegan2", "fetch_weights")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Nothing to be done" in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
    assert (checkout / "legacy.py").exists() and pickle.read_bytes() == b"placed by hand"
