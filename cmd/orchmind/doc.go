// Command orchmind is a peer-to-peer node that trains LoRA adapters on a
// user's own data over a frozen, quantized base model and shares them with
// other nodes through a Kademlia DHT and gossipsub.
package main
