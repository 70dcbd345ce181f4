"""The shared defaults of extraction and matching, in one place (in the spirit of hloc's
``confs``): the CLI, :func:`specglue.match_pair`, the collections, the evaluation and training
all read them from here. Plain constants, no imports: any layer may read them.
"""

#: how the matcher uses specular masks ("off" ignores them); the one list the CLI and the
#: evaluation build their choices from (docs/api.md)
SPECULAR_MODES = ("off", "hard", "cross", "soft", "filter")
#: the mode of ``match_pair``, the CLI and the collections: highlight keypoints keep giving
#: context in their own image but are neither attended to across nor matched. Sinus pose
#: (benchmarks/results/sequence_pose_sinus.md) does not separate it from no masks (AUC@10 48.2
#: against 53.3, 95 % interval of the difference [-11.6, +1.3]); the sinus trajectory favours it
#: slightly (docs/endoscopy_pose.md). The model's own default stays ``hard``, the mode the ONNX
#: graph exports
PIPELINE_SPECULAR_MODE = "cross"
#: specularity >= this makes a keypoint specular in hard/cross/filter
SPECULAR_THRESHOLD = 0.5
#: px: a keypoint this close to a specular pixel counts as specular (detectors fire on the rim
#: of a highlight, just outside it: see benchmarks/results/specular_aliked_margin0.md)
MASK_MARGIN = 3

#: keypoints per image of match_pair, the CLI and the collections
MAX_KEYPOINTS = 2048
#: px: images whose long side exceeds this are shrunk to it before extraction
RESIZE = 1024
#: the evaluation's keypoints per image and long side (the official LightGlue benchmarks' 1024 at 640 px)
EVAL_MAX_KEYPOINTS = 1024
EVAL_RESIZE = 640

#: the speed presets (specglue.presets: what each sets) and the one of match_pair and the CLI
PRESET_NAMES = ("accurate", "fast", "realtime")
DEFAULT_PRESET = "accurate"
