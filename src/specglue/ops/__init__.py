"""CPU operations chosen by measurement, shared by the matcher and the extractors: what the CPU
can do (:mod:`.cpu`), the choice between two implementations (:mod:`.choice`) and the
operations themselves (:mod:`.kernels`)."""
