"""CPU operations chosen by measurement, shared by the matcher and the extractors: what the CPU
can do (:mod:`.cpu`), the choice between two implementations (:mod:`.choice`) and the
operations themselves (:mod:`.kernels`), and the max filter of suppression and dilation
(:mod:`.filters`)."""
