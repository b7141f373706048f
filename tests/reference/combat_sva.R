# Reference values of ComBat from sva::ComBat (Bioconductor sva 3.46.0, R 4.2).
# Input: combat_input.csv (written by combat_input.py). Output: combat_sva_<variant>.csv,
# the adjusted analytes (samples x analytes), for
#   parametric     par.prior = TRUE                       mod = model.matrix(~group)
#   nonparametric  par.prior = FALSE                      mod = model.matrix(~group)
#   meanonly       par.prior = TRUE,  mean.only = TRUE    mod = model.matrix(~group)
#   nomod          par.prior = TRUE                       mod = NULL
#   missing        par.prior = TRUE, 20 cells set to NA   mod = model.matrix(~group)
# The NA cells are row ((k * 7) %% 60) + 1, column ((k * 11) %% 29) + 1 of the analytes
# for k = 0..19 (a30, constant in site B, is left complete).
# Run from the repository root: Rscript tests/reference/combat_sva.R
suppressPackageStartupMessages(library(sva))
here <- "tests/reference"
d <- read.csv(file.path(here, "combat_input.csv"), check.names = FALSE)
analytes <- grep("^a[0-9]+$", names(d), value = TRUE)
dat <- t(as.matrix(d[, analytes]))
colnames(dat) <- d$sample
group <- factor(d$group, levels = c("control", "case"))
mod <- model.matrix(~group)
write_out <- function(adj, variant) {
  out <- data.frame(sample = d$sample, t(adj), check.names = FALSE)
  write.csv(out, file.path(here, paste0("combat_sva_", variant, ".csv")),
            row.names = FALSE, quote = FALSE)
}
run <- function(...) suppressMessages(ComBat(dat = dat, batch = d$site, ...))
write_out(run(mod = mod, par.prior = TRUE), "parametric")
write_out(run(mod = mod, par.prior = FALSE), "nonparametric")
write_out(run(mod = mod, par.prior = TRUE, mean.only = TRUE), "meanonly")
write_out(run(mod = NULL, par.prior = TRUE), "nomod")
k <- 0:19
dat_na <- dat
dat_na[cbind(((k * 11) %% 29) + 1, ((k * 7) %% 60) + 1)] <- NA
write_out(suppressMessages(ComBat(dat = dat_na, batch = d$site, mod = mod)), "missing")
