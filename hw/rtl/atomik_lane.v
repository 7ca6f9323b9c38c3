// One lane of the slot array: ROWS slots (reference, accumulator, operator) and a two-stage
// pipeline that takes one operation per cycle.
//
// Stage 0 (the cycle a request is presented) reads the row from the two memories (synchronous
// read, so they map to block RAM); stage 1 (the next cycle) combines and writes back. An
// operation on the row the previous operation wrote takes that operation's result (forwarding),
// so back-to-back ACCUMs to one slot all count. Per-slot flags live in flip-flops: `clean`
// (accumulator is the identity: masks the memory, so CLEAR and reset take one cycle),
// `loaded` (reference is not 0) and `opadd` (operator is wrapping ADD, else XOR).
`default_nettype none
module atomik_lane #(
    parameter integer ROWS = 16,
    parameter integer RW = 4              // bits of a row index, >= 1
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            clear,         // every row: reference 0, identity, XOR
    input  wire            req_valid,
    input  wire [2:0]      req_kind,      // K_* below
    input  wire [RW-1:0]   req_row,
    input  wire [63:0]     req_data,
    output wire [63:0]     res_state,     // stage 1: the state before the operation
    output wire            accum_done,    // stage 1 applied an ACCUM
    output wire [ROWS-1:0] clean_bits
);
    // Kinds (atomik_windows.v): 0 ACCUM, 1 LOAD_XOR, 2 LOAD_ADD, 3 READ, 4 SWAP, 5 SWAP_SET
    // (req_data is the new reference).
    localparam [2:0] K_ACCUM = 3'd0, K_LOAD_XOR = 3'd1, K_LOAD_ADD = 3'd2, K_SWAP = 3'd4, K_SWAP_SET = 3'd5;

    reg [63:0] ref_mem [0:ROWS-1];
    reg [63:0] acc_mem [0:ROWS-1];
    reg [63:0] ref_q, acc_q;
    reg [ROWS-1:0] clean, loaded, opadd;

    reg            s1_valid;
    reg [2:0]      s1_kind;
    reg [RW-1:0]   s1_row;
    reg [63:0]     s1_data;
    reg            fwd_q;
    reg [63:0]     fwd_ref, fwd_acc;

    wire        s1_add   = opadd[s1_row];
    wire [63:0] cur_ref  = fwd_q ? fwd_ref : (loaded[s1_row] ? ref_q : 64'd0);
    wire [63:0] cur_acc  = fwd_q ? fwd_acc : (clean[s1_row] ? 64'd0 : acc_q);
    wire [63:0] combined = s1_add ? cur_ref + cur_acc : cur_ref ^ cur_acc;
    wire [63:0] acc_new  = s1_add ? cur_acc + s1_data : cur_acc ^ s1_data;
    wire        is_load  = s1_kind == K_LOAD_XOR || s1_kind == K_LOAD_ADD;

    // The row's values after the stage-1 operation, for the next request's forwarding.
    reg [63:0] next_ref, next_acc;
    always @* begin
        next_ref = cur_ref;
        next_acc = cur_acc;
        case (s1_kind)
            K_ACCUM:             next_acc = acc_new;
            K_LOAD_XOR, K_LOAD_ADD: begin next_ref = s1_data; next_acc = 64'd0; end
            K_SWAP:              begin next_ref = combined; next_acc = 64'd0; end
            K_SWAP_SET:          begin next_ref = s1_data; next_acc = 64'd0; end
            default: ;
        endcase
    end

    assign res_state  = combined;
    assign accum_done = s1_valid && s1_kind == K_ACCUM;
    assign clean_bits = clean;

    // Memories: one read port (stage 0), one write port (stage 1).
    always @(posedge clk) begin
        ref_q <= ref_mem[req_row];
        acc_q <= acc_mem[req_row];
        if (s1_valid && s1_kind == K_ACCUM)
            acc_mem[s1_row] <= acc_new;
        if (s1_valid && (is_load || s1_kind == K_SWAP || s1_kind == K_SWAP_SET))
            ref_mem[s1_row] <= s1_kind == K_SWAP ? combined : s1_data;
    end

    always @(posedge clk) begin
        if (rst) begin
            s1_valid <= 1'b0;
            fwd_q    <= 1'b0;
        end else begin
            s1_valid <= req_valid;
            fwd_q    <= req_valid && s1_valid && req_row == s1_row && !clear;
        end
        s1_kind <= req_kind;
        s1_row  <= req_row;
        s1_data <= req_data;
        fwd_ref <= next_ref;
        fwd_acc <= next_acc;
    end

    always @(posedge clk) begin
        if (rst || clear) begin
            clean  <= {ROWS{1'b1}};
            loaded <= {ROWS{1'b0}};
            opadd  <= {ROWS{1'b0}};
        end else if (s1_valid) begin
            case (s1_kind)
                K_ACCUM: clean[s1_row] <= acc_new == 64'd0;
                K_LOAD_XOR, K_LOAD_ADD: begin
                    clean[s1_row]  <= 1'b1;
                    loaded[s1_row] <= 1'b1;
                    opadd[s1_row]  <= s1_kind == K_LOAD_ADD;
                end
                K_SWAP, K_SWAP_SET: begin
                    clean[s1_row]  <= 1'b1;
                    loaded[s1_row] <= 1'b1;
                end
                default: ;
            endcase
        end
    end
endmodule
`default_nettype wire
