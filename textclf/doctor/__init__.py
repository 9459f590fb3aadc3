"""textclf doctor: why a text classifier does not learn, and what to change (data, training runs, Keras models)."""
