"""The TFRecord format core, shared by image and table exports.

Framing, CRC-32C and gzip (:mod:`.records`), where each record of a file starts
(:mod:`.index`), the ``tf.train.Example`` wire codec (:mod:`.example`), and files written
atomically in shards (:mod:`.shards`). Nothing here knows about grids or georeferencing.
"""
