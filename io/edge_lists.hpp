// A set of graphs in one text file of edge lists, so that generated graphs can be scored with
// anyone's tools. Each graph is a header line and one line per edge:
//
//   # graph <index> nodes <n> [draw <k>]
//   <u> <v>
//   ...
//
// nodes are 0..n−1 (isolated nodes are kept: n says how many there are), each edge once, u < v.
// networkx reads a graph's block with nx.parse_edgelist(lines, nodetype=int) (and
// G.add_nodes_from(range(n)) for the isolated nodes); nx.read_edgelist on the whole file skips
// the '#' lines and gives their disjoint union only if the indices were made distinct, so read it
// block by block (docs/graphs.md has the five lines). The optional draw is the evaluation draw
// the graph belongs to (the published protocol scores sets of as many graphs as the test set).
//
// read_edge_lists refuses, with the file and line, anything else: a node out of range, a
// self-loop, a repeated edge, an edge before any header, a malformed number.
#pragma once

#include <charconv>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "io/files.hpp"

namespace ebl {

/// One graph of an edge-list file: its node count, edges (u < v) and evaluation draw (−1: none).
struct EdgeListGraph {
  std::size_t nodes = 0;                                   ///< n (nodes 0..n−1)
  std::vector<std::pair<std::size_t, std::size_t>> edges;  ///< each edge once, u < v
  long draw = -1;                                          ///< the draw it belongs to, −1 if none
};

/// The file's text for `graphs` (see the top of the file).
inline std::string edge_lists_text(const std::vector<EdgeListGraph>& graphs) {
  std::string s;
  for (std::size_t g = 0; g < graphs.size(); ++g) {
    s += graphs[g].draw >= 0
             ? fmt::format("# graph {} nodes {} draw {}\n", g, graphs[g].nodes, graphs[g].draw)
             : fmt::format("# graph {} nodes {}\n", g, graphs[g].nodes);
    for (auto [u, v] : graphs[g].edges) s += fmt::format("{} {}\n", std::min(u, v), std::max(u, v));
  }
  return s;
}

/// Writes the graphs to path atomically (io/files.hpp).
inline void write_edge_lists(const std::filesystem::path& path,
                             const std::vector<EdgeListGraph>& graphs) {
  write_file_atomic(path, edge_lists_text(graphs));
}

/// Reads a file written by write_edge_lists; IoError naming the file and line on anything else.
inline std::vector<EdgeListGraph> read_edge_lists(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("cannot read {}", path.string()));
  std::vector<EdgeListGraph> out;
  std::set<std::pair<std::size_t, std::size_t>> seen;
  std::string line;
  std::size_t ln = 0;
  auto fail = [&](const std::string& why) {
    return IoError(fmt::format("{}:{}: {} (line '{}')", path.string(), ln, why,
                               line.size() > 60 ? line.substr(0, 60) + "..." : line));
  };
  auto number = [&](std::string_view tok, const char* what) {
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec != std::errc() || p != tok.data() + tok.size() || tok.empty())
      throw fail(fmt::format("{} is not a non-negative integer", what));
    return v;
  };
  while (std::getline(in, line)) {
    ++ln;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::istringstream ss(line);
    std::vector<std::string> tok;
    for (std::string w; ss >> w;) tok.push_back(w);
    if (tok[0] == "#") {
      if (!(tok.size() == 5 || tok.size() == 7) || tok[1] != "graph" || tok[3] != "nodes" ||
          (tok.size() == 7 && tok[5] != "draw"))
        throw fail("a header is '# graph <index> nodes <n> [draw <k>]'");
      if (number(tok[2], "the graph index") != out.size())
        throw fail(fmt::format("graph {} expected next", out.size()));
      EdgeListGraph g;
      g.nodes = number(tok[4], "the node count");
      if (g.nodes > (1u << 20)) throw fail("more than 2^20 nodes");
      if (tok.size() == 7) g.draw = long(number(tok[6], "the draw"));
      out.push_back(std::move(g));
      seen.clear();
      continue;
    }
    if (out.empty()) throw fail("an edge before the first '# graph' header");
    if (tok.size() != 2) throw fail("an edge is two node indices");
    std::size_t u = number(tok[0], "a node"), v = number(tok[1], "a node");
    EdgeListGraph& g = out.back();
    if (u >= g.nodes || v >= g.nodes)
      throw fail(fmt::format("node out of range (the graph has {} nodes)", g.nodes));
    if (u == v) throw fail("a self-loop");
    if (u > v) std::swap(u, v);
    if (!seen.insert({u, v}).second) throw fail("a repeated edge");
    g.edges.emplace_back(u, v);
  }
  if (in.bad()) throw IoError(fmt::format("cannot read {}", path.string()));
  return out;
}

}  // namespace ebl
