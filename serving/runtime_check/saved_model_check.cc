// saved_model_check: loads a SavedModel the way TF Serving does and runs requests through it.
//
//   saved_model_check EXPORT_DIR REQUEST_FILE RESPONSE_FILE
//
// EXPORT_DIR is loaded with tensorflow::LoadSavedModel(..., {"serve"}, &bundle) -- TF Serving's
// call -- and every call in REQUEST_FILE is run with Session::Run, the signature's input and
// output keys resolved to tensor names through its SignatureDef. Before loading, every op of
// the MetaGraph (graph and function library) is looked up in this binary's op and kernel
// registries, so a Python-only op (EagerPyFunc, PyFunc) or a custom op is named even when
// loading itself would succeed.
//
// Files (all integers are unsigned 32-bit little-endian; a "blob" is a length then bytes):
//   REQUEST_FILE  = repeated call:   blob signature name, u32 n, n x blob NamedTensorProto
//   RESPONSE_FILE = repeated result (one per call, same order):
//                   u32 ok (1/0), blob error message, u32 n, n x blob NamedTensorProto
// NamedTensorProto names are the signature's input / output keys.
//
// stdout: one JSON object -- loaded, load_error, load_seconds, unregistered_ops,
// ops_without_cpu_kernel, signatures (name, method, inputs/outputs with tensor name, dtype,
// shape; -1 = unknown dimension, null shape = unknown rank), calls (signature, ok, error,
// seconds), vm_rss_kb / vm_hwm_kb (from /proc/self/status, after all calls) and
// vm_rss_before_load_kb. Exit code 0 when the JSON was written (whatever the outcome),
// 2 on bad arguments or an unreadable request file.
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/cc/saved_model/reader.h"
#include "tensorflow/core/framework/kernel_def.pb.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow/core/protobuf/named_tensor.pb.h"

namespace {

using Named = std::vector<tensorflow::NamedTensorProto>;

struct Call {
  std::string signature;
  Named inputs;
};

struct CallResult {
  bool ok = false;
  std::string error;
  Named outputs;
  double seconds = 0;
};

// -- framing -------------------------------------------------------------------------------

bool ReadU32(std::istream& in, uint32_t* value) {
  unsigned char bytes[4];
  if (!in.read(reinterpret_cast<char*>(bytes), 4)) return false;
  *value = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (uint32_t(bytes[3]) << 24);
  return true;
}

bool ReadBlob(std::istream& in, std::string* blob) {
  uint32_t size;
  if (!ReadU32(in, &size)) return false;
  blob->resize(size);
  return size == 0 || static_cast<bool>(in.read(&(*blob)[0], size));
}

void WriteU32(std::ostream& out, uint32_t value) {
  const char bytes[4] = {char(value & 0xff), char((value >> 8) & 0xff),
                         char((value >> 16) & 0xff), char((value >> 24) & 0xff)};
  out.write(bytes, 4);
}

void WriteBlob(std::ostream& out, const std::string& blob) {
  WriteU32(out, static_cast<uint32_t>(blob.size()));
  out.write(blob.data(), blob.size());
}

// Returns false (with *error) on a truncated or malformed file.
bool ReadCalls(const std::string& path, std::vector<Call>* calls, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open request file " + path;
    return false;
  }
  while (in.peek() != std::char_traits<char>::eof()) {
    Call call;
    uint32_t count;
    if (!ReadBlob(in, &call.signature) || !ReadU32(in, &count)) {
      *error = "truncated request file " + path;
      return false;
    }
    for (uint32_t i = 0; i < count; ++i) {
      std::string blob;
      tensorflow::NamedTensorProto named;
      if (!ReadBlob(in, &blob) || !named.ParseFromString(blob)) {
        *error = "bad NamedTensorProto in request file " + path;
        return false;
      }
      call.inputs.push_back(std::move(named));
    }
    calls->push_back(std::move(call));
  }
  return true;
}

void WriteResults(const std::string& path, const std::vector<CallResult>& results) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const CallResult& result : results) {
    WriteU32(out, result.ok ? 1 : 0);
    WriteBlob(out, result.error);
    WriteU32(out, static_cast<uint32_t>(result.outputs.size()));
    for (const auto& named : result.outputs) WriteBlob(out, named.SerializeAsString());
  }
}

// -- JSON ----------------------------------------------------------------------------------

std::string Quote(const std::string& text) {
  std::ostringstream out;
  out << '"';
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (c < 0x20) {
      char escaped[8];
      snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out << escaped;
    } else {
      out << c;
    }
  }
  out << '"';
  return out.str();
}

std::string QuoteAll(const std::set<std::string>& items) {
  std::string joined = "[";
  for (const auto& item : items) joined += (joined.size() > 1 ? "," : "") + Quote(item);
  return joined + "]";
}

std::string ShapeJson(const tensorflow::TensorShapeProto& shape) {
  if (shape.unknown_rank()) return "null";
  std::string dims = "[";
  for (int i = 0; i < shape.dim_size(); ++i) {
    dims += (i ? "," : "") + std::to_string(shape.dim(i).size());
  }
  return dims + "]";
}

std::string TensorsJson(const google::protobuf::Map<std::string, tensorflow::TensorInfo>& map) {
  std::map<std::string, tensorflow::TensorInfo> sorted(map.begin(), map.end());
  std::string out = "[";
  for (const auto& [key, info] : sorted) {
    out += (out.size() > 1 ? "," : "");
    out += "{\"key\":" + Quote(key) + ",\"name\":" + Quote(info.name()) +
           ",\"dtype\":" + Quote(tensorflow::DataType_Name(info.dtype())) +
           ",\"shape\":" + ShapeJson(info.tensor_shape()) + "}";
  }
  return out + "]";
}

std::string SignaturesJson(const tensorflow::MetaGraphDef& meta) {
  std::map<std::string, tensorflow::SignatureDef> sorted(meta.signature_def().begin(),
                                                         meta.signature_def().end());
  std::string out = "[";
  for (const auto& [name, signature] : sorted) {
    out += (out.size() > 1 ? "," : "");
    out += "{\"name\":" + Quote(name) + ",\"method\":" + Quote(signature.method_name()) +
           ",\"inputs\":" + TensorsJson(signature.inputs()) +
           ",\"outputs\":" + TensorsJson(signature.outputs()) + "}";
  }
  return out + "]";
}

// -- ops -----------------------------------------------------------------------------------

// Op types of every node in the graph and its function library, minus calls to library
// functions (a node's op may name a function).
std::set<std::string> OpTypes(const tensorflow::GraphDef& graph) {
  std::set<std::string> functions, ops;
  for (const auto& function : graph.library().function()) {
    functions.insert(function.signature().name());
    for (const auto& node : function.node_def()) ops.insert(node.op());
  }
  for (const auto& node : graph.node()) ops.insert(node.op());
  for (const auto& name : functions) ops.erase(name);
  return ops;
}

bool HasCpuKernel(const std::string& op) {
  const tensorflow::KernelList kernels = tensorflow::GetRegisteredKernelsForOp(op);
  for (const auto& kernel : kernels.kernel()) {
    if (kernel.device_type() == "CPU" || kernel.device_type() == "DEFAULT") return true;
  }
  return false;
}

void ScanOps(const tensorflow::GraphDef& graph, std::set<std::string>* unregistered,
             std::set<std::string>* without_kernel) {
  for (const auto& op : OpTypes(graph)) {
    const tensorflow::OpDef* def = nullptr;
    if (!tensorflow::OpRegistry::Global()->LookUpOpDef(op, &def).ok()) {
      unregistered->insert(op);
    } else if (!HasCpuKernel(op)) {
      without_kernel->insert(op);
    }
  }
}

// Adds the op names TensorFlow's errors cite to the matching set.
void OpsFromError(const std::string& message, std::set<std::string>* unregistered,
                  std::set<std::string>* without_kernel) {
  static const std::regex kNotRegistered("Op type not registered '([^']+)'");
  static const std::regex kNoKernel(
      "No registered '([^']+)' OpKernel|No OpKernel was registered to support Op '([^']+)'");
  std::smatch match;
  if (std::regex_search(message, match, kNotRegistered)) unregistered->insert(match[1]);
  if (std::regex_search(message, match, kNoKernel)) {
    without_kernel->insert(match[1].matched ? match[1] : match[2]);
  }
}

// -- memory --------------------------------------------------------------------------------

long StatusKb(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// -- calls ---------------------------------------------------------------------------------

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

CallResult RunCall(tensorflow::SavedModelBundle& bundle, const Call& call) {
  CallResult result;
  const auto& signatures = bundle.meta_graph_def.signature_def();
  auto found = signatures.find(call.signature);
  if (found == signatures.end()) {
    result.error = "no signature '" + call.signature + "' in the SavedModel";
    return result;
  }
  const tensorflow::SignatureDef& signature = found->second;
  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  for (const auto& named : call.inputs) {
    auto input = signature.inputs().find(named.name());
    if (input == signature.inputs().end()) {
      result.error = "signature '" + call.signature + "' has no input '" + named.name() + "'";
      return result;
    }
    tensorflow::Tensor tensor;
    if (!tensor.FromProto(named.tensor())) {
      result.error = "input '" + named.name() + "' is not a valid TensorProto";
      return result;
    }
    feeds.emplace_back(input->second.name(), tensor);
  }
  std::map<std::string, std::string> outputs;  // key -> tensor name, sorted by key
  for (const auto& [key, info] : signature.outputs()) outputs[key] = info.name();
  std::vector<std::string> fetches;
  for (const auto& [key, name] : outputs) fetches.push_back(name);
  std::vector<tensorflow::Tensor> values;
  const auto start = std::chrono::steady_clock::now();
  tensorflow::Status status = bundle.session->Run(feeds, fetches, {}, &values);
  result.seconds = Since(start);
  if (!status.ok()) {
    result.error = status.ToString();
    return result;
  }
  size_t index = 0;
  for (const auto& [key, name] : outputs) {
    tensorflow::NamedTensorProto named;
    named.set_name(key);
    values[index++].AsProtoField(named.mutable_tensor());  // as TF Serving answers
    result.outputs.push_back(std::move(named));
  }
  result.ok = true;
  return result;
}

std::string CallsJson(const std::vector<Call>& calls, const std::vector<CallResult>& results) {
  std::string out = "[";
  for (size_t i = 0; i < results.size(); ++i) {
    out += (i ? "," : "");
    out += "{\"signature\":" + Quote(calls[i].signature) +
           ",\"ok\":" + (results[i].ok ? "true" : "false") +
           ",\"error\":" + Quote(results[i].error) +
           ",\"seconds\":" + std::to_string(results[i].seconds) + "}";
  }
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " EXPORT_DIR REQUEST_FILE RESPONSE_FILE\n";
    return 2;
  }
  const std::string export_dir = argv[1];
  std::vector<Call> calls;
  std::string error;
  if (!ReadCalls(argv[2], &calls, &error)) {
    std::cerr << error << "\n";
    return 2;
  }
  const long rss_before = StatusKb("VmRSS");
  std::set<std::string> unregistered, without_kernel;
  tensorflow::MetaGraphDef meta;
  const std::unordered_set<std::string> tags = {"serve"};
  if (tensorflow::ReadMetaGraphDefFromSavedModel(export_dir, tags, &meta).ok()) {
    ScanOps(meta.graph_def(), &unregistered, &without_kernel);
  }
  tensorflow::SavedModelBundle bundle;
  const auto start = std::chrono::steady_clock::now();
  tensorflow::Status status = tensorflow::LoadSavedModel(
      tensorflow::SessionOptions(), tensorflow::RunOptions(), export_dir, tags, &bundle);
  const double load_seconds = Since(start);
  std::vector<CallResult> results;
  if (status.ok()) {
    for (const Call& call : calls) {
      results.push_back(RunCall(bundle, call));
      OpsFromError(results.back().error, &unregistered, &without_kernel);
    }
  } else {
    OpsFromError(std::string(status.message()), &unregistered, &without_kernel);
  }
  WriteResults(argv[3], results);
  std::cout << "{\"loaded\":" << (status.ok() ? "true" : "false")
            << ",\"load_error\":" << Quote(status.ok() ? "" : status.ToString())
            << ",\"load_seconds\":" << load_seconds
            << ",\"unregistered_ops\":" << QuoteAll(unregistered)
            << ",\"ops_without_cpu_kernel\":" << QuoteAll(without_kernel)
            << ",\"signatures\":" << SignaturesJson(status.ok() ? bundle.meta_graph_def : meta)
            << ",\"calls\":" << CallsJson(calls, results)
            << ",\"vm_rss_before_load_kb\":" << rss_before
            << ",\"vm_rss_kb\":" << StatusKb("VmRSS") << ",\"vm_hwm_kb\":" << StatusKb("VmHWM")
            << "}" << std::endl;
  return 0;
}
