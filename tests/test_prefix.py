"""Subject prefixes as the subsystem writes them, from a made-up history."""

from __future__ import annotations

from conftest import git

from mmconvert.gitrepo import GitTree
from mmconvert.maintainers import subject_prefix


def commit(tree, subject, path="sound/core/pcm.c"):
    p = tree / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(p.read_text() + subject + "\n" if p.exists() else subject + "\n")
    git(tree, "add", path)
    git(tree, "commit", "--quiet", "-m", subject)


def test_the_prefix_is_the_subsystems_most_common_one_in_its_own_spelling(sample_tree):
    for s in ("ALSA: pcm: fix a leak", "ALSA: pcm: drop a check", "alsa: pcm: typo",
              "ALSA: PCM: rename", "ALSA: core: tidy", "ALSA: core: more",
              "sound: misc", "ALSA: core: again"):
        commit(sample_tree, s)
    # "ALSA: core" is the most common single spelling (3), but "alsa: pcm"
    # is the most common prefix (4 in all), written "ALSA: pcm" most often.
    assert subject_prefix(GitTree(sample_tree), ["sound/core/pcm.c"]) == "ALSA: pcm"


def test_without_history_the_path_decides(sample_tree):
    assert subject_prefix(GitTree(sample_tree), ["drivers/char/fieldsdev.c"]) == "char: fieldsdev"


def test_without_history_a_maintainers_file_pattern_names_the_component(tmp_path):
    from mmconvert.maintainers import Maintainers

    (tmp_path / "drivers/hv").mkdir(parents=True)
    (tmp_path / "MAINTAINERS").write_text(
        "Maintainers list\n\n"
        "HYPER-V CORE\nM:\tA <a@example.org>\nF:\tdrivers/hv/\n\n"
        "MSHV ROOT AND VTL\nM:\tB <b@example.org>\nF:\tdrivers/hv/mshv*\n")
    git(tmp_path, "init", "--quiet")
    maint = Maintainers(tmp_path)
    gt = GitTree(tmp_path)
    assert subject_prefix(gt, ["drivers/hv/mshv_root_main.c", "drivers/hv/mshv_vtl_main.c"],
                          maint) == "hv: mshv"
    # A directory's section says no more than the path.
    assert subject_prefix(gt, ["drivers/hv/hv_balloon.c"], maint) == "hv: hv_balloon"
    # Files of two components: the path again.
    assert subject_prefix(gt, ["drivers/hv/mshv_root_main.c", "drivers/hv/vmbus_drv.c"],
                          maint) == "hv"
