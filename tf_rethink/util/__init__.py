"""TensorFlow-free leaves every other subpackage may use: errors, atomic files, registries,
width scaling, quiet TensorFlow import."""
