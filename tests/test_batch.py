"""Batch inspection across processes."""

import subprocess
import sys
import textwrap
from pathlib import Path

from defectscope.batch import output_names


def test_batch_after_multithreaded_opencv_work_does_not_hang(tmp_path):
    # A forked worker inherits the parent's OpenCV thread-pool locks and can wait on them for ever;
    # a service or notebook does OpenCV work before it runs a batch.
    script = textwrap.dedent(f"""
        import cv2, numpy as np
        cv2.setNumThreads(4)
        big = np.random.default_rng(0).integers(0, 255, (2000, 2000), np.uint8)
        for _ in range(5):
            cv2.GaussianBlur(big, (0, 0), 3)
        from pathlib import Path
        from defectscope.synth import write_dataset
        from defectscope.batch import BatchOptions, collect_images, inspect_batch
        from defectscope.profile import load_profile
        write_dataset(Path({str(tmp_path)!r}), n=4, seed=3)
        reports = inspect_batch(collect_images([{str(tmp_path)!r}]),
                                BatchOptions(profile=load_profile("iec-sm-upc")), jobs=2)
        print(len(reports))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4"


def test_output_names_are_distinct_when_files_share_a_name():
    paths = [Path("a/x/img.png"), Path("b/x/img.png"), Path("c/other.png")]
    names = output_names(paths)
    assert len(set(names)) == 3
    assert names[2] == "other"
