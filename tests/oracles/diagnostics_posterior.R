# Reference values for tests/test_diagnostics.cpp, from the posterior R package (Vehtari,
# Gelman, Simpson, Carpenter, Bürkner), Debian's r-cran-posterior. Not run by CTest (R and its
# packages are ~500 MB); rerun by hand after a change of the chains below:
#   Rscript tests/oracles/diagnostics_posterior.R
# The chains are recursions that tests/test_diagnostics.cpp computes the same way.
suppressMessages(library(posterior))
# Uniforms from Park and Miller's minimal standard generator, x <- 16807 x mod (2^31 - 1): every
# product is below 2^53, so R's doubles and the C++ test's integers give the same numbers.
uniforms <- function(seed, count) {
  u <- numeric(count)
  x <- seed
  for (k in seq_len(count)) {
    x <- (16807 * x) %% 2147483647
    u[k] <- x / 2147483647
  }
  u
}
# m chains of n draws; chain c is driven by the uniforms of seed 1000 + c through f(u, previous)
chains <- function(f, m, n) sapply(0:(m - 1), function(c) {
  u <- uniforms(1000 + c, n)
  y <- numeric(n)
  prev <- 0
  for (i in seq_len(n)) {
    prev <- f(u[i], prev)
    y[i] <- prev
  }
  y
})
sets <- list(
  issue = cbind(c(-1.4, -1.4, -0.3, -0.2), c(-1.2, 0.7, 0.6, -0.1)),
  ar = chains(function(u, p) 0.8 * p + (u - 0.5), 4, 500),
  heavy = chains(function(u, p) tan(pi * (u - 0.5)), 3, 400),
  antithetic = chains(function(u, p) -0.4 * p + (u - 0.5), 4, 300),
  odd = chains(function(u, p) 0.3 * p + (u - 0.5), 3, 101)
)
for (name in names(sets)) {
  x <- sets[[name]]
  cat(sprintf("%s: ess_basic(split=FALSE) %.10g, bulk %.10g, tail %.10g, rhat %.10g\n", name,
              ess_basic(x, split = FALSE), ess_bulk(x), ess_tail(x), rhat(x)))
}
cat(sprintf("posterior %s\n", as.character(packageVersion("posterior"))))
