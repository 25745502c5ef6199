// Catalog listings.
#include "ctl/catalog_commands.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hf_config.h"
#include "common/records/input_file.h"
#include "ctl/format.h"
#include "nlohmann/json.hpp"

namespace moecap::ctl {
namespace {

std::string AttentionName(const ModelSpec& m) {
  if (m.attention == AttentionKind::kMla) return "MLA";
  return m.gqa.kv_heads == m.gqa.heads ? "MHA" : "GQA";
}

std::string Billions(double params) { return absl::StrCat(Fixed(params / 1e9, 1), "B"); }

std::string PeakTflops(const HardwareSpec& hw, Dtype dtype) {
  auto it = hw.peak_flops.find(dtype);
  return it == hw.peak_flops.end() ? "-" : Fixed(it->second / 1e12, 1);
}

}  // namespace

CLI::App* RegisterModelsCommand(CLI::App& app, CatalogListOptions& o) {
  CLI::App* cmd = app.add_subcommand("models", "list the model catalog");
  cmd->add_option("-o,--output", o.output, "table, json or csv")->capture_default_str();
  o.import_command = cmd->add_subcommand(
      "import", "write the catalog YAML of a Hugging Face config.json (prints it, or --write)");
  o.import_command->add_option("config", o.import_path, "the model's config.json")->required();
  o.import_command->add_option("--write", o.import_dir,
                               "a catalog directory: writes DIR/models/<name>.yaml (a --catalog "
                               "directory then finds it)");
  return cmd;
}

namespace {
absl::Status RunModelsImport(const CatalogListOptions& o, const CommandIo& io) {
  absl::StatusOr<std::string> text = records::ReadInputFile(o.import_path);
  if (!text.ok()) return text.status();
  absl::StatusOr<ModelSpec> model = ModelFromHfConfig(*text, o.import_path);
  if (!model.ok()) return model.status();
  const std::string yaml = absl::StrCat("# Imported by `moecapctl models import` from ",
                                        o.import_path, "\n", ModelYaml(*model));
  if (o.import_dir.empty()) {
    io.out << yaml;
    return absl::OkStatus();
  }
  const std::filesystem::path dir = std::filesystem::path(o.import_dir) / "models";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir.string(), ": ", ec.message()));
  const std::filesystem::path file = dir / absl::StrCat(model->name, ".yaml");
  std::ofstream out(file, std::ios::binary);
  out << yaml;
  if (!out.flush()) return absl::InternalError(absl::StrCat(file.string(), ": cannot write"));
  io.out << "wrote " << file.string() << " (model '" << model->name << "')\n";
  return absl::OkStatus();
}
}  // namespace

CLI::App* RegisterHardwareCommand(CLI::App& app, CatalogListOptions& o) {
  CLI::App* cmd = app.add_subcommand("hardware", "list the hardware catalog");
  cmd->add_option("-o,--output", o.output, "table, json or csv")->capture_default_str();
  return cmd;
}

absl::Status RunModelsCommand(const CatalogListOptions& o, const GlobalOptions& global,
                              const CommandIo& io) {
  if (o.import_command != nullptr && o.import_command->parsed()) return RunModelsImport(o, io);
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  absl::StatusOr<Catalog> catalog = LoadCatalog(global);
  if (!catalog.ok()) return catalog.status();
  const std::vector<std::string> header = {
      "name",  "display_name", "layers",    "moe_layers",   "hidden",       "experts",
      "top_k", "shared",       "attention", "total_params", "active_params"};
  TextTable table(header);
  nlohmann::json list = nlohmann::json::array();
  std::string csv = CsvLine(header);
  for (const ModelSpec& m : catalog->models()) {
    const std::vector<std::string> row = {m.name,
                                          m.display_name,
                                          absl::StrCat(m.layers),
                                          absl::StrCat(m.MoeLayers()),
                                          absl::StrCat(m.hidden_size),
                                          absl::StrCat(m.experts),
                                          absl::StrCat(m.experts_per_token),
                                          absl::StrCat(m.shared_experts),
                                          AttentionName(m),
                                          Billions(static_cast<double>(TotalParams(m))),
                                          Billions(static_cast<double>(ActiveParamsPerToken(m)))};
    table.AddRow(row);
    csv += CsvLine(row);
    list.push_back({{"name", m.name},
                    {"display_name", m.display_name},
                    {"aliases", m.aliases},
                    {"source", m.source},
                    {"layers", m.layers},
                    {"dense_layers", m.dense_layers},
                    {"hidden_size", m.hidden_size},
                    {"experts", m.experts},
                    {"experts_per_token", m.experts_per_token},
                    {"expert_ffn_size", m.expert_ffn_size},
                    {"shared_experts", m.shared_experts},
                    {"attention", AttentionName(m)},
                    {"total_params", TotalParams(m)},
                    {"active_params", ActiveParamsPerToken(m)}});
  }
  if (*format == OutputFormat::kJson) {
    io.out << list.dump(2) << "\n";
  } else if (*format == OutputFormat::kCsv) {
    io.out << csv;
  } else {
    io.out << table.Render();
  }
  return absl::OkStatus();
}

absl::Status RunHardwareCommand(const CatalogListOptions& o, const GlobalOptions& global,
                                const CommandIo& io) {
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(o.output);
  if (!format.ok()) return format.status();
  absl::StatusOr<Catalog> catalog = LoadCatalog(global);
  if (!catalog.ok()) return catalog.status();
  const std::vector<std::string> header = {
      "name",       "display_name", "memory_gib", "bandwidth_gb_s", "fp32_tflops", "bf16_tflops",
      "fp8_tflops", "tdp_w",        "usd",        "usd_per_hour"};
  TextTable table(header);
  std::string csv = CsvLine(header);
  nlohmann::json list = nlohmann::json::array();
  for (const HardwareSpec& hw : catalog->hardware()) {
    const std::vector<std::string> row = {
        hw.name,
        hw.display_name,
        Fixed(hw.memory_bytes / (1024.0 * 1024.0 * 1024.0), 0),
        hw.peak_bandwidth_bytes_s > 0 ? Fixed(hw.peak_bandwidth_bytes_s / 1e9, 0) : "measured",
        PeakTflops(hw, Dtype::kFp32),
        PeakTflops(hw, Dtype::kBf16),
        PeakTflops(hw, Dtype::kFp8),
        Fixed(hw.tdp_watts, 0),
        Fixed(hw.purchase_usd, 0),
        Fixed(hw.cloud_usd_per_hour, 2)};
    table.AddRow(row);
    csv += CsvLine(row);
    nlohmann::json peaks = nlohmann::json::object();
    for (const auto& [dtype, flops] : hw.peak_flops) peaks[std::string(DtypeName(dtype))] = flops;
    list.push_back({{"name", hw.name},
                    {"display_name", hw.display_name},
                    {"aliases", hw.aliases},
                    {"kind", hw.kind == DeviceKind::kGpu ? "gpu" : "cpu"},
                    {"memory_bytes", hw.memory_bytes},
                    {"peak_bandwidth_bytes_per_s", hw.peak_bandwidth_bytes_s},
                    {"peak_flops", peaks},
                    {"tdp_watts", hw.tdp_watts},
                    {"purchase_usd", hw.purchase_usd},
                    {"cloud_usd_per_hour", hw.cloud_usd_per_hour},
                    {"source", hw.source}});
  }
  if (*format == OutputFormat::kJson) {
    io.out << list.dump(2) << "\n";
  } else if (*format == OutputFormat::kCsv) {
    io.out << csv;
  } else {
    io.out << table.Render();
  }
  return absl::OkStatus();
}

}  // namespace moecap::ctl
