"""Adapters that bring pndmkit's methods to the ecosystems where the models live.

* :mod:`pndmkit.integrations.diffusers`: ``PNDMKitScheduler``, any registered method (or a hand-built
  :class:`~pndmkit.integrator.Integrator`) as a diffusers scheduler, for ``DDPMPipeline``,
  ``StableDiffusionPipeline``, ``StableDiffusion3Pipeline`` and every other pipeline whose scheduler config is
  one pndmkit reads (DDPM-style, sigma, EDM and flow-matching schedulers), and the one module that translates
  diffusers' scheduler configs (needs the ``peers`` extra: ``pip install 'pndmkit[peers,torch]'``).
* :mod:`pndmkit.integrations.k_diffusion`: samplers with k-diffusion's signature
  ``sample(model, x, sigmas, ...)`` for code that calls denoisers in sigma units (no k-diffusion needed).

Nothing here is imported by ``import pndmkit``: each submodule imports its peer when it is imported.
"""
