// placeholder, replaced by the real bootstrap
