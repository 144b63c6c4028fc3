"""The state layer: demand state in Redis. Key layout (keys), the record's legend and
decoder (record), window arithmetic (windows), the Lua scripts with their generated
prelude (lua), the worker's writes (store), reads (reader) and the source registry."""
