# Reference values for hikisig.stats.power from R's pwr package (pwr.t2n.test, pwr.t.test):
# two-sided two-sample t-test power, the smallest detectable d and the required n.
# pwr solves for d and n with uniroot's default tolerance (about 1e-4), so each solved value
# is given twice: as pwr returns it (pwr_value) and as the root of pwr's own power function
# found by uniroot with tol = 1e-12 (value).
# Run: Rscript tests/reference/power_pwr.R > tests/reference/power_pwr.csv
suppressPackageStartupMessages(library(pwr))
rows <- list()
add <- function(kind, n1, n2, d, alpha, power, ratio, value, pwr_value) {
  rows[[length(rows) + 1]] <<- data.frame(kind = kind, n1 = n1, n2 = n2, d = d, alpha = alpha,
    power = power, ratio = ratio, value = value, pwr_value = pwr_value)
}
bh <- 0.05 / 127
tight <- function(f, lower, upper) uniroot(f, c(lower, upper), tol = 1e-12)$root

# power for given n1, n2, d, alpha
for (p in list(c(42, 41, 0.8, 0.05), c(42, 41, 0.5, bh), c(11, 10, 0.8, 0.05),
               c(31, 31, 1.2, bh), c(10, 10, 0.8, 0.05), c(5, 20, 1.5, 0.01),
               c(100, 50, 0.3, 0.05), c(2, 2, 3, 0.05), c(42, 41, -0.8, 0.05))) {
  r <- pwr.t2n.test(n1 = p[1], n2 = p[2], d = p[3], sig.level = p[4])$power
  add("power", p[1], p[2], p[3], p[4], NA, NA, r, r)
}
# power with equal groups, pwr.t.test
for (p in list(c(25, 0.8, 0.05), c(64, 0.5, 0.05), c(20.5, 1.1, 0.001))) {
  r <- pwr.t.test(n = p[1], d = p[2], sig.level = p[3], type = "two.sample")$power
  add("power", p[1], p[1], p[2], p[3], NA, NA, r, r)
}
# smallest d detected with a given power
for (p in list(c(42, 41, 0.05, 0.8), c(42, 41, bh, 0.8), c(31, 31, bh, 0.8),
               c(11, 10, bh, 0.8), c(11, 10, 0.05, 0.9), c(100, 50, 0.01, 0.8))) {
  f <- function(d) pwr.t2n.test(n1 = p[1], n2 = p[2], d = d, sig.level = p[3])$power - p[4]
  r <- pwr.t2n.test(n1 = p[1], n2 = p[2], sig.level = p[3], power = p[4])$d
  add("min_d", p[1], p[2], NA, p[3], p[4], NA, tight(f, 1e-7, 10), r)
}
# cases needed with ratio controls per case (ratio 1: pwr.t.test's n per group)
for (p in list(c(0.8, 0.05, 0.8, 1), c(0.5, 0.05, 0.8, 1), c(0.8, bh, 0.8, 1),
               c(1.2, bh, 0.9, 1), c(0.3, 0.01, 0.8, 1), c(0.8, 0.05, 0.8, 2),
               c(1, bh, 0.8, 0.5), c(0.6, 0.05, 0.8, 3))) {
  if (p[4] == 1) {
    f <- function(n) pwr.t.test(n = n, d = p[1], sig.level = p[2])$power - p[3]
    r <- pwr.t.test(d = p[1], sig.level = p[2], power = p[3])$n
  } else {
    f <- function(n) pwr.t2n.test(n1 = n, n2 = p[4] * n, d = p[1], sig.level = p[2])$power - p[3]
    r <- NA
  }
  add("n_case", NA, NA, p[1], p[2], p[3], p[4], tight(f, max(2, 2 / p[4]) + 1e-10, 1e9), r)
}
out <- do.call(rbind, rows)
options(digits = 15)
write.csv(out, stdout(), row.names = FALSE)
