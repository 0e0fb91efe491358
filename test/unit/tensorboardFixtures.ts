/**
 * TensorBoard event files written by Debian's Python the way TensorBoard's own writers write them: the TFRecord
 * framing of tensorboard/summary/writer/record_writer.py (uint64 LE length, masked CRC-32C of it, data, masked
 * CRC-32C of the data; CRC-32C computed here from its polynomial), and `Event` messages serialized by Debian's
 * python3-protobuf runtime from a descriptor built with the field numbers of tensorboard/compat/proto/{event,
 * summary,tensor,tensor_shape,types}.proto. The writer's file name and first event (`file_version:
 * "brain.Event:2"`) are those of tensorboard's EventFileWriter (which torch.utils.tensorboard uses); `add_scalar`
 * writes `simple_value` as torch's and tensorboardX's do, `tf2_scalar` a one-element tensor with plugin "scalars"
 * and its metadata on the tag's first value only, as TF2's summary writer does; `add_text` the DT_STRING tensor
 * of plugin "text" that transformers' TensorBoardCallback writes for the training arguments.
 *
 * Each record's start offset is appended to `writer.offsets`, so a test can damage a chosen record.
 */
import { pythonFixture } from './pythonFixtures';

const writerPrelude = String.raw`
import struct, time, socket
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CRC32C_POLYNOMIAL_REFLECTED = 0x82F63B78
CRC_MASK_DELTA = 0xA282EAD8
UINT32 = 0xFFFFFFFF

def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC32C_POLYNOMIAL_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table

CRC32C_TABLE = _crc32c_table()

def crc32c(data):
    crc = UINT32
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ UINT32

assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value

def masked_crc32c(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & UINT32) + CRC_MASK_DELTA) & UINT32

F = descriptor_pb2.FieldDescriptorProto

def _field(message, name, number, kind, repeated=False, type_name=None, oneof=None):
    field = message.field.add(name=name, number=number, type=kind,
                              label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof

def _schema():
    proto = descriptor_pb2.FileDescriptorProto(name="lens_fixture/tensorboard_subset.proto",
                                               package="tensorboard", syntax="proto3")
    data_type = proto.enum_type.add(name="DataType")
    for name, number in (("DT_INVALID", 0), ("DT_FLOAT", 1), ("DT_DOUBLE", 2), ("DT_STRING", 7)):
        data_type.value.add(name=name, number=number)
    data_class = proto.enum_type.add(name="DataClass")
    for name, number in (("DATA_CLASS_UNKNOWN", 0), ("DATA_CLASS_SCALAR", 1), ("DATA_CLASS_TENSOR", 2)):
        data_class.value.add(name=name, number=number)
    shape = proto.message_type.add(name="TensorShapeProto")
    dim = shape.nested_type.add(name="Dim")
    _field(dim, "size", 1, F.TYPE_INT64)
    _field(dim, "name", 2, F.TYPE_STRING)
    _field(shape, "dim", 2, F.TYPE_MESSAGE, repeated=True, type_name=".tensorboard.TensorShapeProto.Dim")
    _field(shape, "unknown_rank", 3, F.TYPE_BOOL)
    tensor = proto.message_type.add(name="TensorProto")
    _field(tensor, "dtype", 1, F.TYPE_ENUM, type_name=".tensorboard.DataType")
    _field(tensor, "tensor_shape", 2, F.TYPE_MESSAGE, type_name=".tensorboard.TensorShapeProto")
    _field(tensor, "version_number", 3, F.TYPE_INT32)
    _field(tensor, "tensor_content", 4, F.TYPE_BYTES)
    _field(tensor, "float_val", 5, F.TYPE_FLOAT, repeated=True)
    _field(tensor, "double_val", 6, F.TYPE_DOUBLE, repeated=True)
    _field(tensor, "string_val", 8, F.TYPE_BYTES, repeated=True)
    metadata = proto.message_type.add(name="SummaryMetadata")
    plugin = metadata.nested_type.add(name="PluginData")
    _field(plugin, "plugin_name", 1, F.TYPE_STRING)
    _field(plugin, "content", 2, F.TYPE_BYTES)
    _field(metadata, "plugin_data", 1, F.TYPE_MESSAGE, type_name=".tensorboard.SummaryMetadata.PluginData")
    _field(metadata, "display_name", 2, F.TYPE_STRING)
    _field(metadata, "summary_description", 3, F.TYPE_STRING)
    _field(metadata, "data_class", 4, F.TYPE_ENUM, type_name=".tensorboard.DataClass")
    summary = proto.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    _field(value, "node_name", 7, F.TYPE_STRING)
    _field(value, "tag", 1, F.TYPE_STRING)
    _field(value, "metadata", 9, F.TYPE_MESSAGE, type_name=".tensorboard.SummaryMetadata")
    _field(value, "simple_value", 2, F.TYPE_FLOAT, oneof=0)
    _field(value, "obsolete_old_style_histogram", 3, F.TYPE_BYTES, oneof=0)
    _field(value, "tensor", 8, F.TYPE_MESSAGE, type_name=".tensorboard.TensorProto", oneof=0)
    _field(summary, "value", 1, F.TYPE_MESSAGE, repeated=True, type_name=".tensorboard.Summary.Value")
    event = proto.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    _field(event, "wall_time", 1, F.TYPE_DOUBLE)
    _field(event, "step", 2, F.TYPE_INT64)
    _field(event, "file_version", 3, F.TYPE_STRING, oneof=0)
    _field(event, "graph_def", 4, F.TYPE_BYTES, oneof=0)
    _field(event, "summary", 5, F.TYPE_MESSAGE, type_name=".tensorboard.Summary", oneof=0)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    factory = message_factory.MessageFactory(pool)
    get = lambda name: factory.GetPrototype(pool.FindMessageTypeByName("tensorboard." + name))
    names = ("Event", "Summary", "Summary.Value", "SummaryMetadata", "SummaryMetadata.PluginData", "TensorProto",
             "TensorShapeProto", "TensorShapeProto.Dim")
    return {name.split(".")[-1]: get(name) for name in names}

PB = _schema()
Event, Summary, Value, SummaryMetadata = PB["Event"], PB["Summary"], PB["Value"], PB["SummaryMetadata"]
PluginData, TensorProto, TensorShapeProto, Dim = PB["PluginData"], PB["TensorProto"], PB["TensorShapeProto"], PB["Dim"]
_writer_uid = [0]

class EventFileWriter:
    def __init__(self, log_dir, wall_time=None):
        os.makedirs(log_dir, exist_ok=True)
        _writer_uid[0] += 1
        name = "events.out.tfevents.%010d.%s.%s.%s" % (time.time(), socket.gethostname(), os.getpid(), _writer_uid[0])
        self.path = os.path.join(log_dir, name)
        self.file = open(self.path, "wb")
        self.offsets = []
        self.tagged = set()
        self.write_event(Event(wall_time=wall_time or time.time(), file_version="brain.Event:2"))

    def write_record(self, data):
        self.offsets.append(self.file.tell())
        header = struct.pack("<Q", len(data))
        self.file.write(header + struct.pack("<I", masked_crc32c(header)) + data
                        + struct.pack("<I", masked_crc32c(data)))

    def write_event(self, event):
        self.write_record(event.SerializeToString())
        self.file.flush()

    def _summary(self, step, values, wall_time):
        self.write_event(Event(wall_time=wall_time or time.time(), step=step, summary=Summary(value=values)))

    def add_scalar(self, tag, value, step, wall_time=None):
        self._summary(step, [Value(tag=tag, simple_value=value)], wall_time)

    def _metadata_once(self, tag, plugin):
        if tag in self.tagged:
            return None
        self.tagged.add(tag)
        return SummaryMetadata(plugin_data=PluginData(plugin_name=plugin),
                               data_class=1 if plugin == "scalars" else 2)

    def tf2_scalar(self, tag, value, step, double=False, in_content=True, wall_time=None, dims=()):
        tensor = TensorProto(dtype=2 if double else 1,
                             tensor_shape=TensorShapeProto(dim=[Dim(size=d) for d in dims]))
        if in_content:
            tensor.tensor_content = struct.pack("<d" if double else "<f", value)
        elif double:
            tensor.double_val.append(value)
        else:
            tensor.float_val.append(value)
        value = Value(tag=tag, tensor=tensor)
        metadata = self._metadata_once(tag, "scalars")
        if metadata is not None:
            value.metadata.CopyFrom(metadata)
        self._summary(step, [value], wall_time)

    def add_text(self, tag, text, step):
        tensor = TensorProto(dtype=7, string_val=[text.encode("utf_8")],
                             tensor_shape=TensorShapeProto(dim=[Dim(size=1)]))
        value = Value(tag=tag, tensor=tensor)
        metadata = self._metadata_once(tag, "text")
        if metadata is not None:
            value.metadata.CopyFrom(metadata)
        self._summary(step, [value], None)

    def close(self):
        self.file.close()
        return self
`;

/**
 * Runs Python `body` with `EventFileWriter` (and the message classes `Event`, `Summary`, …) in scope, after
 * pythonFixture's own prelude (`out`, a fresh folder; `json, os, math`); returns `out`.
 */
export function tensorboardFixture(body: string): string {
  return pythonFixture(`${writerPrelude}\n${body}`);
}
