"""Empirical privacy audits of a trained run: does the model leak whether a report was trained on?

One concept per module:

- :mod:`~radcore.audit.canaries`: synthetic canary reports with random labels, each put into training by a
  seeded fair coin (the one hook into training, :func:`~radcore.audit.canaries.add_canaries`);
- :mod:`~radcore.audit.scores`: per-report attack scores from a trained model (loss, label log-odds);
- :mod:`~radcore.audit.membership`: membership inference on real reports, members against held-out non-members
  (AUC, TPR at low FPR, bootstrap intervals; Carlini et al. 2022 report TPR at low FPR, not only AUC);
- :mod:`~radcore.audit.one_run`: the empirical epsilon lower bound of Steinke, Nasr and Jagielski 2023 ("Privacy
  Auditing with One (1) Training Run") from guesses on the canaries;
- :mod:`~radcore.audit.run`: ``audit_run(run_dir)``, both audits of a saved run, written to ``audit.json`` and
  summarised in ``results.json`` (what ``radcore audit --run`` does).
"""
