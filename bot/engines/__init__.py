"""Building the translation and transcription engines from settings, bundled fixture models,
and the model directory watcher that reloads them."""
