// The simulator's graph-node queries (cudaGraphGetNodes, cudaGraphNodeGetType): a graph's nodes
// are its recorded items that a GPU graph would hold as nodes (Item::node_type).
#include "runtime_internal.h"

using namespace mlpx_sim::runtime_detail;  // NOLINT

extern "C" {

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* numNodes) {
  Lock lock(api_mutex());
  if (graph == nullptr || numNodes == nullptr || state().graphs.count(graph) == 0)
    return fail(cudaErrorInvalidValue);
  size_t count = 0;
  for (const ItemPtr& item : graph->body->items) {
    if (item->node_type == cudaGraphNodeTypeEmpty) continue;
    if (nodes != nullptr && count < *numNodes) {
      // A node is its item: valid while a graph holding the recording lives.
      nodes[count] = reinterpret_cast<cudaGraphNode_t>(const_cast<Item*>(item.get()));
    }
    ++count;
  }
  *numNodes = count;
  return cudaSuccess;
}

cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, enum cudaGraphNodeType* pType) {
  Lock lock(api_mutex());
  if (node == nullptr || pType == nullptr) return fail(cudaErrorInvalidValue);
  for (CUgraph_st* graph : state().graphs) {
    for (const ItemPtr& item : graph->body->items) {
      if (reinterpret_cast<const void*>(item.get()) == reinterpret_cast<const void*>(node)) {
        *pType = item->node_type;
        return cudaSuccess;
      }
    }
  }
  return fail(cudaErrorInvalidValue, "cudaGraphNodeGetType: not a node of a live graph");
}

}  // extern "C"
