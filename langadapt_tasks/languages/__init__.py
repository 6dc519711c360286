"""Languages as data: specs, the judge rubrics, and the judge files a spec names."""
