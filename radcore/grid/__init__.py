"""The compendium's grid: profiles (what to run), the papermill runner (how), the results store (what came out)."""
