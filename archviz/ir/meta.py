"""Keys under which passes store their results in ``Node.meta``."""
SHAPES = "shapes"            # dict port -> shape tuple (batch first)
IN_SHAPES = "in_shapes"      # list of input shapes, in input order
PARAMS = "params"            # archviz.ops.base.Params
MACS = "macs"                # int
ACTIVE = "active_params"     # int: the params one token uses (a mixture of experts: router + top_k experts)
ELEMENTWISE = "elementwise"  # int
ACT_ELEMS = "activation_elements"  # int, elements of all output tensors
RF = "rf"                    # receptive field (issue: receptive fields)
TIES = "ties"                # dict tensor -> (owner id, owner's tensor, shape, kind): the tensors it shares
TIED_BY = "tied_by"          # dict tensor -> [(node id, its tensor)]: the layers that share this one's tensor
BACKWARD = "backward"        # archviz.passes.backward.NodeBackward: what the layer's backward keeps and costs
