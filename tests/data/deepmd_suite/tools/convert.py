import glob, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from google.protobuf import text_format
for p in sorted(glob.glob("/tmp/work/pbtxt/*.pbtxt")):
    g = tf.compat.v1.GraphDef()
    text_format.Merge(open(p).read(), g)
    out = "/tmp/work/pb/" + os.path.basename(p)[:-6] + ".pb"
    data = g.SerializeToString()
    open(out, "wb").write(data)
    print(os.path.basename(p), os.path.getsize(p), len(data), len(g.node))
