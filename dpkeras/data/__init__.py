"""DeePMD-kit data: npy/HDF5 systems, batching and system sampling, the tf.data pipeline."""
