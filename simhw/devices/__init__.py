"""Device models beyond the GPU roofline: storage (NVMe, flash), crossbars, spatial arrays."""
