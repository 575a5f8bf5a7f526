"""Handlers that must convert together: a fops swapped in for a live
file's f_op at run time has to carry the same hook as the fops it stands
in for (ALSA's disconnect is where this showed)."""

from __future__ import annotations

import json

from conftest import git, run_mmconvert

LIVE = """#include <linux/fs.h>
#include <linux/mm.h>

static int live_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_private_data = file->private_data;
	return 0;
}

static int dead_mmap(struct file *file, struct vm_area_struct *vma)
{
	return -ENODEV;
}

static const struct file_operations dead_fops = {
	.mmap		= dead_mmap,
};

static const struct file_operations live_fops = {
	.mmap		= live_mmap,
};

void live_disconnect(struct file *file)
{
	file->f_op = &dead_fops;
}
"""

STUCK = """#include <linux/fs.h>
#include <linux/mm.h>

static int stuck_mmap(struct file *file, struct vm_area_struct *vma)
{
	return vm_insert_page(vma, vma->vm_start, file->private_data);
}

static const struct file_operations stuck_fops = {
	.mmap		= stuck_mmap,
};
"""


def add(tree, path, text):
    (tree / path).parent.mkdir(parents=True, exist_ok=True)
    (tree / path).write_text(text)
    git(tree, "add", path)
    git(tree, "commit", "--quiet", "-m", f"add {path}")


def classes(tree) -> dict[str, dict]:
    r = run_mmconvert("scan", tree, "--json")
    assert r.returncode == 0, r.stderr
    return {h["handler"]: h for h in json.loads(r.stdout)["handlers"]}


def test_a_swapped_in_fops_converts_with_the_ones_it_stands_in_for(sample_tree):
    add(sample_tree, "drivers/swap/live.c", LIVE)
    got = classes(sample_tree)
    assert got["live_mmap"]["class"] == got["dead_mmap"]["class"] == "fields"

    add(sample_tree, "drivers/swap/stuck.c", STUCK)
    got = classes(sample_tree)
    assert got["stuck_mmap"]["class"] == "needs-vma"
    for name in ("live_mmap", "dead_mmap"):
        h = got[name]
        assert h["class"] == "needs-vma", name
        assert h["reason"] == {"file": "drivers/swap/live.c", "line": 25,
                               "expression": "file->f_op = &dead_fops;"}
        assert h["notes"] == ["dead_fops is swapped in for the f_op of live files under "
                              "drivers/swap/: their handlers convert together, and stuck_mmap() "
                              "cannot"]
    # The rest of the tree is not held back.
    assert got["fieldsdev_mmap"]["class"] == "fields"
    r = run_mmconvert("convert", sample_tree)
    assert r.returncode == 0, r.stderr
    assert "dead_mmap(struct file *file" in (sample_tree / "drivers/swap/live.c").read_text()
