# Reference values for Cronbach's alpha (psych::alpha, Feldt interval) and item-rest
# correlations on tests/reference/alpha_items.csv.
# Run: Rscript tests/reference/alpha_psych.R > tests/reference/alpha_psych.json
suppressPackageStartupMessages(library(psych))
x <- read.csv("tests/reference/alpha_items.csv")
a <- psych::alpha(x, warnings = FALSE)
cat(sprintf('{"R": "%s", "psych": "%s",\n', R.version.string, packageVersion("psych")))
cat(sprintf(' "alpha": %.12f,\n "feldt_lower": %.12f,\n "feldt_upper": %.12f,\n',
            a$total$raw_alpha, a$feldt$lower.ci, a$feldt$upper.ci))
cat(sprintf(' "r_drop": [%s],\n', paste(sprintf("%.12f", a$item.stats$r.drop), collapse = ", ")))
cat(sprintf(' "alpha_if_dropped": [%s]}\n', paste(sprintf("%.12f", a$alpha.drop$raw_alpha), collapse = ", ")))
