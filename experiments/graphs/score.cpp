// graph_scores: scores generated graphs, read from edge-list files (io/edge_lists.hpp), against a
// reference file by the published protocol (isolated nodes removed, each draw scored apart, mean
// and standard deviation over the draws: metrics/graph_stats.hpp). It prints the rows the
// `graphs` experiment records in results.csv, "community,<model>,<metric>,<value>", <model> the
// file's name without "community_" and ".txt", so that the reported numbers can be recomputed
// from the files the run wrote (tests: graphs_scores_from_files).
//
//   graph_scores runs/graphs/seed0/community_test.txt runs/graphs/seed0/community_score.txt
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "experiments/graphs/community.hpp"

int main(int argc, char** argv) {
  CLI::App app{"graph_scores: MMD² of generated graphs (edge-list files) against a reference",
               "graph_scores"};
  std::string reference;
  std::vector<std::string> generated;
  app.add_option("reference", reference, "the reference graphs (the test set)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("generated", generated, "files of generated graphs")
      ->required()
      ->check(CLI::ExistingFile);
  bool smoke = false;  // every binary takes --smoke (tests/check_doc_shell.py); nothing to shrink
  app.add_flag("--smoke", smoke, "accepted for uniformity: scoring has no size to shrink");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "graph_scores: {}\n", e.what());
    return 2;
  }
  try {
    const auto ref = ebl::read_edge_lists(reference);
    for (const std::string& file : generated) {
      std::string model = std::filesystem::path(file).stem().string();
      if (model.rfind("community_", 0) == 0) model = model.substr(10);
      ebl::community::record_scores(
          model, ebl::community::score(ref, ebl::read_edge_lists(file)),
          [](const char* part, const std::string& m, const char* metric, double v) {
            fmt::print("{},{},{},{:.9g}\n", part, m, metric, v);
          });
    }
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "graph_scores: {}\n", e.what());
    return 1;
  }
}
