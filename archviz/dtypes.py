"""The dtypes archviz sizes tensors in: name -> bytes per element."""
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
