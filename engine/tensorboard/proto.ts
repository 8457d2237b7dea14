/**
 * The protobuf messages of TensorBoard event files, encoded with protobufjs. The definitions are the subset
 * of tensorboard/compat/proto/{event,summary,tensor,tensor_shape}.proto and
 * tensorboard/plugins/hparams/plugin_data.proto that scalars and hparams need, with TensorBoard's own field
 * numbers (unknown fields are skipped by readers, so a subset is a valid encoder).
 */
import * as protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package tensorboard;

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}

message Summary {
  message Value {
    string tag = 1;
    SummaryMetadata metadata = 9;
    oneof value {
      float simple_value = 2;
      TensorProto tensor = 8;
    }
  }
  repeated Value value = 1;
}

enum DataClass {
  DATA_CLASS_UNKNOWN = 0;
  DATA_CLASS_SCALAR = 1;
  DATA_CLASS_TENSOR = 2;
  DATA_CLASS_BLOB_SEQUENCE = 3;
}

message SummaryMetadata {
  message PluginData {
    string plugin_name = 1;
    bytes content = 2;
  }
  PluginData plugin_data = 1;
  string display_name = 2;
  string summary_description = 3;
  DataClass data_class = 4;
}

message TensorShapeProto {
  message Dim {
    int64 size = 1;
    string name = 2;
  }
  repeated Dim dim = 2;
}

message TensorProto {
  int32 dtype = 1;
  TensorShapeProto tensor_shape = 2;
  repeated float float_val = 5 [packed = true];
}

message Value {
  oneof kind {
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
  }
}

message HParamsPluginData {
  int32 version = 1;
  oneof data {
    SessionStartInfo session_start_info = 3;
    SessionEndInfo session_end_info = 4;
  }
}

message SessionStartInfo {
  map<string, Value> hparams = 1;
  string group_name = 4;
  double start_time_secs = 5;
}

enum Status {
  STATUS_UNKNOWN = 0;
  STATUS_SUCCESS = 1;
  STATUS_FAILURE = 2;
  STATUS_RUNNING = 3;
}

message SessionEndInfo {
  Status status = 1;
  double end_time_secs = 2;
}
`;

/** TensorFlow's DataType number for float32 (types.proto). */
export const DT_FLOAT = 1;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
export const EventType = root.lookupType('tensorboard.Event');
export const HParamsPluginDataType = root.lookupType('tensorboard.HParamsPluginData');

export type HParamValue = { number_value: number } | { string_value: string } | { bool_value: boolean };
