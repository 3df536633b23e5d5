"""The istd report's table captions (a leaf module: text only, imports nothing of the project):
``BRIEF`` is the caption printed with a table, ``CAPTIONS`` the long one its sidecar's notes keep
(filled by :mod:`bench.suites.istd_report` with the rows' data sets, protocol and provenance)."""

#: the tables' captions (task, data, protocol, what bold marks); the long CAPTIONS go to the sidecar's notes
BRIEF = {
    "main": ("Infrared small target detection on clean test images, per data set (mIoU, F1, Pd in %), with "
             "learned parameters and time per image; {protocols} protocol. Best per column in bold."),
    "cross": ("Networks trained on one data set (the authors' published weights, or trained here) tested "
              "unchanged on another's test split ({n}, clean); {protocols} protocol. Best per column in bold."),
    "robustness": ("Infrared small target detection on {ds} ({n} images) against the degradation (noise seeded per "
                   "cell, the same for every method); {protocols} protocol. Best per column in bold."),
    "runtime": ("Seconds per image on clean images, with the authors' IPI code beside ours and the learned networks' "
                "CPU throughput. Best per column in bold."),
    "rules": "The same target maps (clean images) scored under each segmentation rule. No bold: rules are not methods.",
    "stages": ("L-RPCANet ablation over the number of stages K on {ds} ({n} clean test images), every row trained "
               "with a reduced recipe (in the notes). Best per column in bold."),
    "se": ("L-RPCANet ablation of the squeeze-and-excitation blocks (B background, T target, N noise, D image; "
           "K = 6) on {ds} ({n} clean test images). Best per column in bold."),
    "bn": ("Diagnostic: the learned networks on {ds} ({n} clean test images) with stored BatchNorm statistics and "
           "with each image's own. Best per column in bold."),
}
CAPTIONS = {
    "main": ("ISTD detection on clean test images. {protocol}; mIoU, F1, Pd in %, Fa printed in units of 1e-5 (stored in 1e-6). Segmentation rule: "
             "{rules}. {datasets}. params: learned parameters (– for classical methods); time: median of timed "
             "repeats of the whole set divided by its number of images, on SIRST where measured (the default "
             "protocol's native-resolution set first, else a protocol's 256x256 set), else the first "
             "dataset (– where not measured). {learned}Best per column in bold. {prov}."),
    "cross": ("Cross-dataset: networks trained on one data set (trained on: the authors' released weights' "
              "training data, or the set and recipe of a network trained here) tested unchanged on the test "
              "split of another data set ({n}, clean), what a user gets from a model on data it was not "
              "trained on. {protocol}; mIoU, F1, Pd in %, Fa printed in units of 1e-5 (stored in 1e-6); maps sigmoid(T) > 0.5 (rpcanet "
              "protocol: > 0.5 x each map's maximum). SIRST-Aug is built from SIRST images: on SIRST, its training "
              "set may hold images of the test split (not checked). The authors' figures on their own test sets (targets "
              "on other data, not comparable with these columns): {figures}. Best per column in bold. {prov}."),
    "robustness": ("Robustness on {ds} ({n} images): mIoU (%), Pd (%) and Fa (printed in units of 1e-5) against the degradation "
                   "(Gaussian noise sigma in gray levels of 0..255, salt-and-pepper density = fraction of pixels; "
                   "noise seeded per cell, identical for every method). {protocol}. Segmentation rule: {rules}. "
                   "{prov}."),
    "runtime": ("Seconds per image (clean images): median of timed repeats of the whole set / number of images; "
                "CPU threads {threads}. authors' code: the authors' IPI (Octave 7.3, OpenBLAS, 2-core machine; "
                "data/istd/reference) mean seconds per image on the same images; ratio = authors / ours (> 1: "
                "this port is faster). CPU GFLOP/s (learned networks): their convolutions' FLOPs per pass / CPU time; "
                "precision and layout are in the method's label (bf16, channels_last; fp32 by default); roof ratio: "
                "the network's forward pass against its convolutions run alone (same shapes, weights, precision, "
                "layout), on one image after the timed pass, interleaved, median of 3 (bench/flops.py; also "
                "tests/benchmarks/test_perf_istd.py). "
                "– where not measured or no reference. {protocol}. {prov}."),
    "rules": ("The same target maps (clean images) scored under each named segmentation rule: {rules}. "
              "{protocol}. No bold: rules are not methods. {prov}."),
    "stages": ("L-RPCANet ablation over the number of stages K on {ds} ({n} test images, clean): parameters and "
               "detection ({protocol}; sigmoid output > 0.5). {budget}. train s: training seconds (one torch "
               "thread, two trainings sharing a 2-core machine); kept step: the step of the state kept by "
               "validation (0: the starting state, which no later validation beat; – where not recorded). {prov}."),
    "se": ("L-RPCANet ablation of the squeeze-and-excitation blocks, switched on module by module (B background, "
           "T target, N noise, D image; K = 6) on {ds} ({n} test images, clean). {protocol}. {budget}. kept step: "
           "the step of the state kept by validation (0: the starting state; – where not recorded). {prov}."),
    "bn": ("Diagnostic, not a published protocol: the learned networks on {ds} ({n} test images, clean) with "
           "BatchNorm normalising by the running averages stored in the checkpoint (the papers' eval mode, the "
           "main table's rows) and by the statistics of the image being segmented (bn=image, prediction-time BN, "
           "Nado et al. 2020), one image per pass. {protocol}; mIoU, nIoU, F1, Pd in %, Fa printed in units of 1e-5 (stored in 1e-6). {prov}."),
}
