"""The core: no Flask views, no store. Clock, files, errors, words, images."""
