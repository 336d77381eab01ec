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
