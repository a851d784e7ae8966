package cpucores

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// fromProcessorInfo counts the records of Windows'
// GetLogicalProcessorInformationEx(RelationProcessorCore) answer: one
// SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX per physical core (Relationship
// and Size, 4 bytes each, then PROCESSOR_RELATIONSHIP: Flags, then
// EfficiencyClass, higher for faster cores on hybrid chips, 0 for all on
// others). It is plain byte parsing, so it is tested on every system.
func fromProcessorInfo(buf []byte) (Counts, error) {
	n := Counts{From: "GetLogicalProcessorInformationEx"}
	classes := map[byte]int{}
	best := byte(0)
	for off := 0; off < len(buf); {
		if len(buf)-off < 10 {
			return Counts{}, errors.New("cpucores: processor information: a record is cut short")
		}
		rel := binary.LittleEndian.Uint32(buf[off:])
		size := int(binary.LittleEndian.Uint32(buf[off+4:]))
		if size < 10 || size > len(buf)-off {
			return Counts{}, fmt.Errorf("cpucores: processor information: record of %d bytes at %d of %d", size, off, len(buf))
		}
		if rel == 0 { // RelationProcessorCore
			n.Physical++
			class := buf[off+9]
			classes[class]++
			best = max(best, class)
		}
		off += size
	}
	n.Fast = classes[best]
	return n, nil
}
