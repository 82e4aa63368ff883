#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "math/philox.h"
#include "mlpx/error.h"
#include "mlpx/sweep.h"
#include "train/config_fields.h"
#include "tune/sweep_parts.h"

// The search space: the space file's keys and distributions, each trial's draw, the grid, and
// a point applied to the base config.
namespace mlpx {

using nlohmann::json;

namespace {

const char* kind_name(SearchParam::Kind kind) {
  switch (kind) {
    case SearchParam::Kind::kUniform:
      return "uniform";
    case SearchParam::Kind::kLogUniform:
      return "loguniform";
    case SearchParam::Kind::kInt:
      return "int";
    case SearchParam::Kind::kChoice:
      break;
  }
  return "choice";
}

// The element of `doc` that `key` ("model.layers.0.units") names, created when only its last
// part is missing from an object (the config then says whether it knows the key). ValueError
// naming the key when a part before the last is missing or an index is out of range.
json& element_at(json& doc, const std::string& key) {
  json* node = &doc;
  std::istringstream parts(key);
  std::vector<std::string> names;
  for (std::string part; std::getline(parts, part, '.');) names.push_back(part);
  MLPX_CHECK(!names.empty() && std::none_of(names.begin(), names.end(),
                                            [](const std::string& n) { return n.empty(); }),
             ValueError, "space: '", key,
             "': expected a dotted config key (optimizer.lr, model.layers.0.units), found an "
             "empty part");
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const bool last = i + 1 == names.size();
    // A name that may also be spelled as an object ("loss": "cross_entropy" is
    // {"type": "cross_entropy"}) takes a key of that object.
    if (node->is_string()) *node = json{{"type", *node}};
    if (node->is_array()) {
      const bool digits = std::all_of(name.begin(), name.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      });
      MLPX_CHECK(digits && name.size() < 10 && std::stoul(name) < node->size(), ValueError,
                 "space: ", key, ": expected an index below ", node->size(), " at '", name,
                 "', found none such in the base config");
      node = &(*node)[std::stoul(name)];
    } else if (node->is_object()) {
      MLPX_CHECK(last || node->contains(name), ValueError, "space: ", key,
                 ": unknown config key (the base config has no '", name, "')");
      node = &(*node)[name];
    } else {
      throw ValueError("space: " + key + ": unknown config key ('" + name +
                       "' inside a value that is not an object or array)");
    }
  }
  return *node;
}

// Checks `key` against the config's table of keys (config_fields()): known, and a
// hyperparameter. An array index names any element: "model.layers.0.units" is the table's
// "model.layers[i].units". ValueError naming the key, with the nearest known one. A key with an
// empty part is left to element_at to name.
void check_searchable(const std::string& key) {
  std::string path;
  std::vector<std::string> indices;
  std::istringstream parts(key);
  for (std::string part; std::getline(parts, part, '.');) {
    if (part.empty()) return;
    const bool index = std::all_of(part.begin(), part.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) != 0;
    });
    if (index && !path.empty()) {
      path += "[i]";
      indices.push_back(part);
    } else {
      path += (path.empty() ? "" : ".") + part;
    }
  }
  if (path.empty() || key.back() == '.') return;
  static const std::vector<ConfigField> fields = config_fields();
  const auto field = std::find_if(fields.begin(), fields.end(),
                                  [&](const ConfigField& f) { return f.path == path; });
  if (field == fields.end()) {
    // The nearest key, spelled as the space spells it: "[i]" back to the key's own index.
    std::string hint = detail::nearest_config_key(path);
    size_t next = 0;
    for (size_t at; (at = hint.find("[i]")) != std::string::npos;) {
      hint.replace(at, 3, "." + (next < indices.size() ? indices[next++] : std::string("0")));
    }
    throw ValueError("space: " + key + ": unknown config key" +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  MLPX_CHECK(field->sweepable, ValueError, "space: ", key,
             ": expected a hyperparameter, found a key a sweep may not search (", field->help,
             "); `mlpx config --keys` marks the ones it may");
}

// A uniform double in [0, 1) from Philox: draw `param` of trial `index` under `seed`.
double uniform01(uint64_t seed, int64_t index, size_t param) {
  const auto i = static_cast<uint64_t>(index);
  const math::Philox4x32 counter{{static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32),
                                  static_cast<uint32_t>(param), 0x5eeb}};
  const math::Philox4x32 out =
      math::philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint64_t bits = (static_cast<uint64_t>(out.v[0]) << 32 | out.v[1]) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

}  // namespace

json detail::params_json(const std::vector<SearchParam>& space, const SearchPoint& point) {
  json params = json::object();
  for (size_t i = 0; i < space.size(); ++i) params[space[i].key] = json::parse(point[i]);
  return params;
}

std::vector<SearchParam> parse_search_space(const std::string& json_text, const Config& base) {
  // Ordered: the keys keep the file's order (the table's columns, the plot's panels).
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(json_text);
  } catch (const json::exception& e) {
    throw ValueError(std::string("space: expected valid JSON, found a syntax error: ") + e.what());
  }
  MLPX_CHECK(doc.is_object() && !doc.empty(), ValueError,
             "space: expected an object of config keys, each with one distribution, found ",
             doc.is_object() ? "an empty object" : doc.dump());
  std::vector<SearchParam> space;
  for (const auto& item : doc.items()) {
    const std::string& key = item.key();
    const nlohmann::ordered_json& dist = item.value();
    MLPX_CHECK(dist.is_object() && dist.size() == 1, ValueError, "space: ", key,
               ": expected one distribution ({\"choice\": [...]}, {\"uniform\": [lo, hi]}, "
               "{\"loguniform\": [lo, hi]} or {\"int\": [lo, hi]}), found ",
               dist.dump());
    check_searchable(key);
    SearchParam p;
    p.key = key;
    const std::string kind = dist.begin().key();
    const nlohmann::ordered_json& args = dist.begin().value();
    if (kind == "choice") {
      MLPX_CHECK(args.is_array() && !args.empty(), ValueError, "space: ", key,
                 ": expected a non-empty array of choices, found ", args.dump());
      for (const auto& v : args) p.choices.push_back(v.dump());
    } else if (kind == "uniform" || kind == "loguniform" || kind == "int") {
      p.kind = kind == "uniform"      ? SearchParam::Kind::kUniform
               : kind == "loguniform" ? SearchParam::Kind::kLogUniform
                                      : SearchParam::Kind::kInt;
      const bool ints = p.kind == SearchParam::Kind::kInt;
      MLPX_CHECK(args.is_array() && args.size() == 2 &&
                     std::all_of(args.begin(), args.end(),
                                 [&](const nlohmann::ordered_json& v) {
                                   return ints ? v.is_number_integer() : v.is_number();
                                 }),
                 ValueError, "space: ", key, ": expected ", kind, " bounds [low, high] as two ",
                 ints ? "integers" : "numbers", ", found ", args.dump());
      p.low = args[0].get<double>();
      p.high = args[1].get<double>();
      MLPX_CHECK(std::isfinite(p.low) && std::isfinite(p.high) && p.low <= p.high, ValueError,
                 "space: ", key, ": expected low <= high (both inclusive), found ", args.dump());
      MLPX_CHECK(p.kind != SearchParam::Kind::kLogUniform || p.low > 0, ValueError, "space: ", key,
                 ": expected loguniform bounds > 0, found ", args.dump());
    } else {
      throw ValueError("space: " + key + ": unknown distribution '" + kind +
                       "'; expected choice, uniform, loguniform or int");
    }
    space.push_back(p);
  }
  // Every key, and each end of its range (every choice), must be a value the config accepts.
  for (const SearchParam& p : space) {
    std::vector<std::string> values = p.choices;
    if (p.kind == SearchParam::Kind::kInt) {
      values = {json(static_cast<int64_t>(p.low)).dump(),
                json(static_cast<int64_t>(p.high)).dump()};
    } else if (p.kind != SearchParam::Kind::kChoice) {
      values = {json(p.low).dump(), json(p.high).dump()};
    }
    for (const std::string& v : values) apply_point(base, {p}, {v});
  }
  return space;
}

SearchPoint random_point(const std::vector<SearchParam>& space, uint64_t seed, int64_t index) {
  SearchPoint point;
  for (size_t i = 0; i < space.size(); ++i) {
    const SearchParam& p = space[i];
    const double u = uniform01(seed, index, i);
    switch (p.kind) {
      case SearchParam::Kind::kChoice: {
        const auto n = static_cast<double>(p.choices.size());
        point.push_back(p.choices[std::min(p.choices.size() - 1, static_cast<size_t>(u * n))]);
        break;
      }
      case SearchParam::Kind::kUniform:
        point.push_back(json(std::clamp(p.low + u * (p.high - p.low), p.low, p.high)).dump());
        break;
      case SearchParam::Kind::kLogUniform: {
        const double v = std::exp(std::log(p.low) + u * (std::log(p.high) - std::log(p.low)));
        point.push_back(json(std::clamp(v, p.low, p.high)).dump());
        break;
      }
      case SearchParam::Kind::kInt: {
        const auto low = static_cast<int64_t>(p.low), high = static_cast<int64_t>(p.high);
        const auto v = low + static_cast<int64_t>(u * static_cast<double>(high - low + 1));
        point.push_back(json(std::min(v, high)).dump());
        break;
      }
    }
  }
  return point;
}

std::vector<SearchPoint> grid_points(const std::vector<SearchParam>& space) {
  for (const SearchParam& p : space) {
    MLPX_CHECK(p.kind == SearchParam::Kind::kChoice, ValueError, "space: ", p.key,
               ": a grid search expects every key to be a choice, found ", kind_name(p.kind));
  }
  std::vector<SearchPoint> points{SearchPoint{}};
  for (const SearchParam& p : space) {
    std::vector<SearchPoint> next;
    for (const SearchPoint& head : points) {
      for (const std::string& v : p.choices) {
        next.push_back(head);
        next.back().push_back(v);
      }
    }
    points = std::move(next);
  }
  return points;
}

Config apply_point(const Config& base, const std::vector<SearchParam>& space,
                   const SearchPoint& point) {
  MLPX_CHECK(point.size() == space.size(), ValueError, "space: expected ", space.size(),
             " values, found ", point.size());
  json doc = json::parse(base.to_json());
  for (size_t i = 0; i < space.size(); ++i) element_at(doc, space[i].key) = json::parse(point[i]);
  try {
    return Config::from_json(doc.dump());
  } catch (const ValueError& e) {
    std::string keys;
    for (const SearchParam& p : space) keys += (keys.empty() ? "" : ", ") + p.key;
    throw ValueError("space: " + keys + ": " + e.what());
  }
}

}  // namespace mlpx
